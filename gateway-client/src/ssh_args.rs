//! OpenSSH's option grammar: from an ssh (or autossh) command line to the
//! forwards it sets up. (Being written.)
