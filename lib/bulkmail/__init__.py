"""bulkmail's domain core (no boto3 here) and its AWS adapters (bulkmail.adapters)."""
