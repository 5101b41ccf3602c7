"""Build a key-archival CMC request with Certipy's own code (certipy-ad).

usage: certipy_archival.py EXCHANGE_CERT.pem OUT_REQUEST.der OUT_KEY.pem USERNAME
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from certipy.lib.certificate import create_csr, create_key_archival

xchg_path, out_req, out_key, username = sys.argv[1:5]
with open(xchg_path, "rb") as f:
    cax = x509.load_pem_x509_certificate(f.read())
csr, key = create_csr(username, None, None, None, f"CN={username}", 2048, None, None)
request = create_key_archival(csr, key, cax)
with open(out_req, "wb") as f:
    f.write(request)
with open(out_key, "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
