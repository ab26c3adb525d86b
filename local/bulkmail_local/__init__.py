"""bulkmail on one machine: the embedded AWS runtime (moto) and the `bulkmail` CLI. Not deployed."""
