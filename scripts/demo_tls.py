"""``make demo-tls``: the acceptance call with mutual TLS on every link.

Makes a throw-away CA and certificates for the master, the slave and a client,
starts both daemons with ``--tls --cert_file --key_file --ca_file``, runs the
call through grpcurl's ``-cacert -cert -key`` flags, and stops both.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arko.testing import Fleet  # noqa: E402
from scripts.demo import REQUEST, run_grpcurl  # noqa: E402
from tests.pki import CertificateAuthority  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="arko-demo-tls-") as tmp:
        folder = Path(tmp)
        ca = CertificateAuthority(folder, name="demo-ca")
        master_cert, slave_cert = ca.issue("arko-master"), ca.issue("demo-slave")
        client = ca.issue("demo-client", client=True)
        creds = grpc.ssl_channel_credentials(
            ca.cert_path.read_bytes(), client.key.read_bytes(), client.cert.read_bytes()
        )
        print(f"certificates in {folder}: CA demo-ca, master arko-master, slave, client")
        with Fleet(folder).running() as fleet:
            master = fleet.master(*ca.daemon_flags(master_cert), credentials=creds)
            print(f"master on {master.address}: mutual TLS")
            slave = fleet.slave(
                master, *ca.daemon_flags(slave_cert), "--run_delay", "1", credentials=creds
            )
            print(f"slave on {slave.address}: mutual TLS, answers only arko-master")
            args = ["-cacert", str(ca.cert_path), "-cert", str(client.cert)]
            args += ["-key", str(client.key), "-d", REQUEST, master.address]
            code = run_grpcurl([*args, "Execution/ExecuteJob"], hide=tmp, alias="$CERTS")
            if code != 0:
                return code
    print("\nmaster and slave stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
