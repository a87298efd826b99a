#!/usr/bin/env python3
"""What operators write today: walk a tree, print each certificate's expiry.

    bench/py_expiry.py DIR

Uses the `cryptography` package; every PEM certificate in every file is
loaded and its not_valid_after_utc printed with the path.
"""
import os
import sys

from cryptography import x509


def main():
    out = []
    for dirpath, _dirs, files in os.walk(sys.argv[1]):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                for cert in x509.load_pem_x509_certificates(data):
                    out.append(f"{path}\t{cert.not_valid_after_utc.isoformat()}\n")
            except (OSError, ValueError) as e:
                out.append(f"{path}\terror: {e}\n")
    sys.stdout.writelines(out)


if __name__ == "__main__":
    main()
