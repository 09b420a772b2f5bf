"""Publishing: build a version, upload it to S3 immutably, register it in Service Catalog.

:mod:`.options` is light (argparse only); :mod:`.command` and the modules it uses import boto3.
"""
