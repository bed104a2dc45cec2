"""AWS Bedrock: batch inference jobs (S3 in, S3 out), InvokeModel and Converse for the other tiers."""
