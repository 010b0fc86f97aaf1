//! Watch stream checker (being written).
