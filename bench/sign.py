#!/usr/bin/env python3
"""sign / verify / policy cost: forklift next to upstream skopeo (sigstore build), one run.

Against a local CNCF distribution (plain HTTP on 127.0.0.1), interleaved for
several rounds, each measurement one process (interpreter start-up included):

  sign (cosign key)   ``forklift sign --key k.key REF`` with cosign's encrypted key
                      (scrypt N=2^16 is most of it, by design of the format)
  sign (plain key)    the same with an unencrypted PKCS#8 key: start-up + signing + push
  skopeo sign         ``skopeo copy --sign-by-sigstore-private-key`` of the same image
                      (copies the image too: every blob is already there, HEADs only)
  verify              ``forklift verify --key k.pub REF``
  skopeo verify       ``skopeo copy`` under a sigstoreSigned policy to a scratch OCI
                      layout (the image is tiny, so this is mostly the verification)
  pull / pull+policy  ``forklift pull REF`` of a present image, without and with a
                      policy that requires the signature (verified once before the
                      rounds, so the cache answers): the difference is what policy
                      adds to a pull of an already verified digest.

Usage: bench/sign.py [--rounds 5]. Needs ../shared/tools/skopeo-sigstore for the peer rows.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORKLIFT = [sys.executable, "-m", "forklift"]
SKOPEO = HERE.parent.parent / "shared" / "tools" / "skopeo-sigstore" / "skopeo"
sys.path.insert(0, str(HERE))

from benchrows import emit_row  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    root.mkdir(parents=True)
    port = free_port()
    cfg = root / "config.yml"
    cfg.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(8)}\n"
    )
    proc = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-sign-"))
    proc, host = start_registry(work / "registry")
    env = {**os.environ, "FORKLIFT_HOME": str(work / "home"), "COSIGN_PASSWORD": "bench"}
    # measure what an installed forklift does: with its bytecode cached
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(HERE.parent / "src" / "forklift")],
        check=True,
    )
    try:
        rootfs = work / "rootfs.tar"
        with tarfile.open(rootfs, "w") as tar:
            data = work / "hello.txt"
            data.write_text("hello\n")
            tar.add(data, "hello.txt")
        ref = f"{host}/bench/signed:1"
        subprocess.run(
            [*FORKLIFT, "import", str(rootfs), ref], env=env, check=True, capture_output=True
        )
        subprocess.run([*FORKLIFT, "push", ref], env=env, check=True, capture_output=True)
        subprocess.run(
            [*FORKLIFT, "key", "generate", "--output-key-prefix", str(work / "k")],
            env=env,
            check=True,
        )
        # the same key without encryption, for the start-up + signing cost alone
        sys.path.insert(0, str(HERE.parent / "src"))
        from cryptography.hazmat.primitives import serialization

        from forklift.sign.keys import PasswordSource, read_private_key

        key = read_private_key(work / "k.key", PasswordSource(b"bench"))
        (work / "plain.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        policy = work / "policy.json"
        policy.write_text(
            json.dumps(
                {
                    "default": [{"type": "insecureAcceptAnything"}],
                    "transports": {
                        "docker": {
                            host: [
                                {
                                    "type": "sigstoreSigned",
                                    "keyPath": str(work / "k.pub"),
                                    "signedIdentity": {"type": "matchRepository"},
                                }
                            ]
                        }
                    },
                }
            )
        )
        have_skopeo = SKOPEO.is_file()
        if have_skopeo:
            regd = work / "regd"
            regd.mkdir()
            (regd / "s.yaml").write_text(
                f"docker:\n  {host}:\n    use-sigstore-attachments: true\n"
            )
            (work / "pass.txt").write_text("bench\n")
            (work / "accept.json").write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
        rows: dict[str, list[float]] = {}
        subprocess.run(
            [*FORKLIFT, "sign", "--key", str(work / "k.key"), f"docker://{ref}"],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*FORKLIFT, "pull", "--policy", str(policy), ref],
            env=env,
            check=True,
            capture_output=True,
        )
        for _ in range(args.rounds):
            rows.setdefault("sign (cosign key)", []).append(
                run([*FORKLIFT, "sign", "--key", str(work / "k.key"), f"docker://{ref}"], env)
            )
            rows.setdefault("sign (plain key)", []).append(
                run([*FORKLIFT, "sign", "--key", str(work / "plain.pem"), f"docker://{ref}"], env)
            )
            rows.setdefault("verify", []).append(
                run([*FORKLIFT, "verify", "--key", str(work / "k.pub"), f"docker://{ref}"], env)
            )
            rows.setdefault("pull (present)", []).append(run([*FORKLIFT, "pull", "-q", ref], env))
            rows.setdefault("pull (present) + policy", []).append(
                run([*FORKLIFT, "pull", "-q", "--policy", str(policy), ref], env)
            )
            if have_skopeo:
                rows.setdefault("skopeo sign (copy+sign)", []).append(
                    run(
                        [
                            str(SKOPEO), "--policy", str(work / "accept.json"), "--registries.d", str(regd),
                            "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                            "--sign-by-sigstore-private-key", str(work / "k.key"),
                            "--sign-passphrase-file", str(work / "pass.txt"),
                            f"docker://{ref}", f"docker://{host}/bench/skopeo:1",
                        ],
                        env,
                    )
                )  # fmt: skip
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                rows.setdefault("skopeo verify (copy under policy)", []).append(
                    run(
                        [
                            str(SKOPEO), "--policy", str(policy), "--registries.d", str(regd),
                            "copy", "--src-tls-verify=false", "--remove-signatures",
                            f"docker://{ref}", f"oci:{out}:1",
                        ],
                        env,
                    )
                )  # fmt: skip
        print(
            f"median of {args.rounds} rounds, seconds (start-up included), {time.strftime('%Y-%m-%d')}"
        )
        med = {k: statistics.median(v) for k, v in rows.items()}
        for name, value in med.items():
            print(f"  {name:36s} {value:7.3f}")
        if have_skopeo:
            print(
                f"  ratio sign (cosign key) / skopeo sign      {med['sign (cosign key)'] / med['skopeo sign (copy+sign)']:.2f}"
            )
            print(
                f"  ratio verify / skopeo verify               {med['verify'] / med['skopeo verify (copy under policy)']:.2f}"
            )
        added = (med["pull (present) + policy"] - med["pull (present)"]) * 1000
        print(f"  policy adds to a pull of a verified digest {added:+.1f} ms")
        load = os.getloadavg()[0]
        print(f"  load average {load:.2f}; bytecode present")
        peers = {
            "sign (cosign key)": "skopeo sign (copy+sign)",
            "verify": "skopeo verify (copy under policy)",
        }
        for name in ("sign (cosign key)", "sign (plain key)", "verify"):
            peer = peers.get(name) if have_skopeo else None
            emit_row(
                f"`{name}` of a pushed image, start-up included",
                unit="s",
                forklift=round(med[name], 3),
                peer=peer,
                peer_value=round(med[peer], 3) if peer else None,
                rounds=args.rounds,
                target="< 0.3 s" if name != "sign (cosign key)" else None,
                met=med[name] < 0.3 if name != "sign (cosign key)" else None,
                load=load,
                note="scrypt N=2^16 of cosign's key format is most of it"
                if name == "sign (cosign key)"
                else None,
            )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
