//! webgen. (Being written.)
