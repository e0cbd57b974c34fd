"""Keys, signatures and attestations in cosign's formats, and the policy that enforces them.

* :mod:`.keys`: cosign's encrypted key format (scrypt + NaCl secretbox), plain PEM keys.
* :mod:`.payload`: the simple-signing payload; :mod:`.dsse`: DSSE envelopes and in-toto.
* :mod:`.layout`: how signatures sit in manifests (cosign's ``.sig``/``.att`` tag layout,
  referrers, Sigstore bundles).
* :mod:`.signing` / :mod:`.verify`: ``forklift sign``, ``attest``, ``verify``,
  ``verify-attestation``; :mod:`.keyless` checks certificates, Rekor entries and the
  trusted root (:mod:`.trustroot`) offline.
* :mod:`.policy`: containers-policy.json semantics, enforced by pull, copy, run,
  build and serve, with results cached per digest (:mod:`.cache`).
"""
