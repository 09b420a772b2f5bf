"""Operating deployed projects: commands that talk to AWS (boto3, imported only when a command runs)."""
