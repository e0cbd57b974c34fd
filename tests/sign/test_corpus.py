"""../shared/corpus/cosign: keys and signatures written by skopeo 1.14 and by an independent signer.

forklift decrypts both keys with the password and verifies both signatures
from their exact bytes; each tampered variant is rejected, with its own reason.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from forklift.errors import InvalidInput, VerificationError
from forklift.sign import keys
from forklift.sign.keys import PasswordSource, WrongPassword
from forklift.sign.verify import VerifyOptions, verify_image

from .memsource import MemorySource, target_for

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"


@dataclass(frozen=True)
class Signed:
    name: str
    private: Path
    public: Path
    directory: Path
    identity: str  # the reference the signature names (as source.txt gives the repository)


def _cases(corpus: Path) -> list[Signed]:
    base = corpus / "cosign"
    return [
        Signed(
            "skopeo",
            base / "keys/skopeo.private",
            base / "keys/skopeo.pub",
            base / "skopeo-signed",
            "127.0.0.1:5056/fixture/one:fx",
        ),
        Signed(
            "python",
            base / "keys/python.key",
            base / "keys/python.pub",
            base / "python-signed",
            "127.0.0.1:5056/fixture/two",
        ),
    ]


@pytest.fixture(params=["skopeo", "python"])
def case(request: pytest.FixtureRequest, corpus: Path) -> Signed:
    return next(c for c in _cases(corpus) if c.name == request.param)


def _password(corpus: Path) -> bytes:
    return (corpus / "cosign/keys/password.txt").read_text().strip().encode()


def test_keys_decrypt_with_the_password(case: Signed, corpus: Path) -> None:
    private = keys.read_private_key(case.private, PasswordSource(_password(corpus)))
    public = keys.read_public_key(case.public)
    assert keys.public_pem(private) == keys.public_pem(public)
    # and sign something the public key accepts
    assert keys.verify(public, keys.sign(private, b"data"), b"data")


def test_a_wrong_password_is_refused(case: Signed) -> None:
    with pytest.raises(WrongPassword, match="wrong password"):
        keys.read_private_key(case.private, PasswordSource(b"not-the-password"))


def _source(case: Signed, corpus: Path) -> tuple[MemorySource, bytes]:
    src = MemorySource()
    image = (corpus / "cosign/image/manifest.json").read_bytes()
    src.add(image)
    for name in ("sig-config.json", "payload.json"):
        src.add((case.directory / name).read_bytes())
    sig = src.add((case.directory / "sig-manifest.json").read_bytes())
    src.sig_tags[(corpus / "cosign/image/digest.txt").read_text().strip()] = sig
    return src, image


def _options(case: Signed, **kw: object) -> VerifyOptions:
    return VerifyOptions(keys=(keys.read_public_key(case.public),), **kw)  # type: ignore[arg-type]


def test_the_signature_verifies(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    target = target_for(src, image, case.identity)
    (verified,) = verify_image(target, _options(case))
    assert verified.payload == (case.directory / "payload.json").read_bytes()
    assert verified.identity == case.identity
    # the exact reference too, when asked for
    verify_image(target, _options(case, identity=case.identity))


def _tampered(src: MemorySource, subject: str, mutate_layer: object) -> None:
    """Rewrite the .sig manifest of ``subject`` with ``mutate_layer(layer, src)`` applied."""
    manifest = json.loads(src.blobs[src.sig_tags[subject]])
    mutate_layer(manifest["layers"][0], src)  # type: ignore[operator]
    src.sig_tags[subject] = src.add(json.dumps(manifest).encode())


def _reject(target: object, options: VerifyOptions, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_image(target, options)  # type: ignore[arg-type]


def test_a_changed_payload_byte_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    subject = next(iter(src.sig_tags))

    def change(layer: dict, src: MemorySource) -> None:
        body = bytearray(src.blobs[layer["digest"]])
        body[body.index(b"fixture")] = ord("F")
        layer["digest"], layer["size"] = src.add(bytes(body)), len(body)

    _tampered(src, subject, change)
    _reject(
        target_for(src, image, case.identity), _options(case), "does not verify with the given key"
    )


def test_a_flipped_signature_byte_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    subject = next(iter(src.sig_tags))

    def flip(layer: dict, src: MemorySource) -> None:
        sig = bytearray(base64.b64decode(layer["annotations"][SIG_ANNOTATION]))
        sig[len(sig) // 2] ^= 0x01
        layer["annotations"][SIG_ANNOTATION] = base64.b64encode(bytes(sig)).decode()

    _tampered(src, subject, flip)
    _reject(
        target_for(src, image, case.identity), _options(case), "does not verify with the given key"
    )


def test_a_missing_signature_annotation_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    subject = next(iter(src.sig_tags))
    _tampered(src, subject, lambda layer, src: layer.pop("annotations"))
    _reject(
        target_for(src, image, case.identity),
        _options(case),
        "has no dev.cosignproject.cosign/signature",
    )


def test_a_signature_copied_to_another_image_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    subject = next(iter(src.sig_tags))
    other = image.replace(b'"size":138', b'"size":139')
    other_digest = src.add(other)
    # the same signature manifest, now under the other image's sha256-<hex>.sig tag
    src.sig_tags[other_digest] = src.sig_tags.pop(subject)
    _reject(target_for(src, other, case.identity), _options(case), "for another image")


def test_a_wrong_key_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    wrong = next(c for c in _cases(corpus) if c.name != case.name)
    _reject(
        target_for(src, image, case.identity), _options(wrong), "does not verify with the given key"
    )


def test_a_wrong_identity_is_rejected(case: Signed, corpus: Path) -> None:
    src, image = _source(case, corpus)
    # the same digest read from another repository: the signature names its own
    target = target_for(src, image, "127.0.0.1:5056/fixture/elsewhere:fx")
    _reject(target, _options(case), "not for 127.0.0.1:5056/fixture/elsewhere")
    # an exact identity that the payload does not name
    target = target_for(src, image, case.identity)
    _reject(target, _options(case, identity="127.0.0.1:5056/fixture/one:other"), "not for")


def test_a_key_file_that_is_not_a_key_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    with pytest.raises(InvalidInput):
        keys.read_private_key(bad, PasswordSource(b"x"))
    with pytest.raises(InvalidInput, match="no PEM block"):
        keys.read_public_key(_write(tmp_path / "x.pub", "hello"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
