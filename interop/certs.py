"""Makes a CA and a server certificate for localhost / 127.0.0.1 (with trustme).

Usage: certs.py DIR   → DIR/ca.pem, DIR/server.pem (chain), DIR/server.key
"""
import os
import sys

import trustme

out = sys.argv[1]
ca = trustme.CA()
cert = ca.issue_cert("localhost", "127.0.0.1")
cert.cert_chain_pems[0].write_to_path(os.path.join(out, "server.pem"))
for extra in cert.cert_chain_pems[1:]:
    extra.write_to_path(os.path.join(out, "server.pem"), append=True)
cert.private_key_pem.write_to_path(os.path.join(out, "server.key"))
ca.cert_pem.write_to_path(os.path.join(out, "ca.pem"))
