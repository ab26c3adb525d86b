"""AWS adapters: the only modules of bulkmail that talk to boto3."""
