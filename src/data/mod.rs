//! Data: IDX loading, the embedded default, the tasks, GPU batching.
