// Batch gathering with the task transform applied per sample.
