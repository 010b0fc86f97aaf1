//! RocksDB storage: the Raft log store and the MVCC state machine.
