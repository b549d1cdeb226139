//! The datagram format. (Being written.)
