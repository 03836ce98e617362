"""Independent access to the test servers, with the official Python SDKs: make buckets and
containers, and download what godwit wrote, so tests check the target without godwit.

    store.py mkbucket NAME | mkcontainer NAME
    store.py download s3|az NAME PREFIX DEST   (writes every object under PREFIX into DEST)
    store.py meta s3|az NAME KEY               (prints the object's user metadata as JSON)
    store.py keys s3|az NAME PREFIX            (prints the keys under PREFIX, relative, as JSON)
    store.py put s3|az NAME KEY TEXT           (writes TEXT at KEY, as another tool would)
    store.py delete s3|az NAME PREFIX          (deletes every object under PREFIX)
    store.py flip s3|az NAME KEY               (flips a byte of KEY, keeping its size and metadata)
    store.py uploads s3 NAME PREFIX            (prints the keys of open multipart uploads)
    store.py start-upload s3 NAME KEY          (starts a multipart upload with one part, left open)

STORE_S3_ENDPOINT, when set, names another S3 server than GODWIT_TEST_S3_ENDPOINT.
"""
import json
import os
import sys

import boto3
from azure.storage.blob import BlobServiceClient


def s3():
    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("STORE_S3_ENDPOINT") or os.environ["GODWIT_TEST_S3_ENDPOINT"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


def azure():
    return BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])


def download(kind, name, prefix, dest):
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    if kind == "s3":
        client = s3()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
            for obj in page.get("Contents", []):
                save(dest, obj["Key"][len(prefix):], client.get_object(Bucket=name, Key=obj["Key"])["Body"].read())
    else:
        container = azure().get_container_client(name)
        for blob in container.list_blobs(name_starts_with=prefix):
            save(dest, blob.name[len(prefix):], container.download_blob(blob.name).readall())


def save(dest, rel, data):
    path = os.path.join(dest, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def meta(kind, name, key):
    if kind == "s3":
        return s3().head_object(Bucket=name, Key=key)["Metadata"]
    return azure().get_blob_client(name, key).get_blob_properties().metadata


def keys(kind, name, prefix):
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    if kind == "s3":
        pages = s3().get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
        found = [o["Key"] for page in pages for o in page.get("Contents", [])]
    else:
        found = [b.name for b in azure().get_container_client(name).list_blobs(name_starts_with=prefix)]
    return sorted(k[len(prefix):] for k in found)


def delete(kind, name, prefix):
    if kind == "az":
        container = azure().get_container_client(name)
        for blob in container.list_blobs(name_starts_with=prefix):
            container.delete_blob(blob.name)
        return
    client = s3()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])


def put(kind, name, key, data, metadata=None):
    if kind == "az":
        azure().get_blob_client(name, key).upload_blob(data, overwrite=True, metadata=metadata)
    else:
        s3().put_object(Bucket=name, Key=key, Body=data, Metadata=metadata or {})


def flip(kind, name, key):
    if kind == "az":
        blob = azure().get_blob_client(name, key)
        data = bytearray(blob.download_blob().readall())
        metadata = blob.get_blob_properties().metadata
    else:
        obj = s3().get_object(Bucket=name, Key=key)
        data = bytearray(obj["Body"].read())
        metadata = obj["Metadata"]
    data[len(data) // 2] ^= 0x40
    put(kind, name, key, bytes(data), metadata)


def uploads(name, prefix):
    found = s3().list_multipart_uploads(Bucket=name, Prefix=prefix).get("Uploads", [])
    return sorted(u["Key"] for u in found)


def start_upload(name, key):
    client = s3()
    upload = client.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
    client.upload_part(Bucket=name, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * (5 << 20))


cmd = sys.argv[1]
if cmd == "mkbucket":
    s3().create_bucket(Bucket=sys.argv[2])
elif cmd == "mkcontainer":
    azure().create_container(sys.argv[2])
elif cmd == "download":
    download(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
elif cmd == "meta":
    print(json.dumps(meta(sys.argv[2], sys.argv[3], sys.argv[4])))
elif cmd == "keys":
    print(json.dumps(keys(sys.argv[2], sys.argv[3], sys.argv[4])))
elif cmd == "put":
    put(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].encode())
elif cmd == "delete":
    delete(sys.argv[2], sys.argv[3], sys.argv[4])
elif cmd == "flip":
    flip(sys.argv[2], sys.argv[3], sys.argv[4])
elif cmd == "uploads":
    print(json.dumps(uploads(sys.argv[3], sys.argv[4])))
elif cmd == "start-upload":
    start_upload(sys.argv[3], sys.argv[4])
else:
    sys.exit("unknown command " + cmd)
