"""The processing job: transform_and_ingest.py runs on its own in the processing container."""
