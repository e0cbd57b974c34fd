"""The ``docker://`` transport and the registry client it runs on.

Everything that talks the OCI Distribution API lives here, beside the other
transports (containers/image keeps ``docker/`` beside ``oci/``; ggcr
``remote/`` beside ``layout/``), bottom to top:

* ``hosts``, ``options``, ``retry``, ``errors``, ``challenge``, ``pagination``:
  small pure helpers (registry names and origins, settings, backoff and
  deadlines, error bodies, ``WWW-Authenticate`` and ``Link`` parsing);
* ``credentials``: docker's ``config.json``, containers' ``auth.json`` and
  credential helpers;
* ``httpclient``: HTTP/1.1 on httpcore's pools (headers, redirects, proxies
  from the environment), for this client and forklift's other downloads;
* ``session`` (with ``auth``): one registry's HTTP pool, endpoint discovery,
  challenges and tokens, retries, and the rule that credentials never leave
  the registry's origin;
* ``download``, ``upload``: verified, resumable blob transfers;
* ``client``: :class:`~forklift.transports.registry.client.RegistryClient`,
  the API of one registry; ``blob_locations`` remembers where blobs were seen
  (for mounts), ``concurrency`` bounds parallel transfers;
* ``transport``: ``RegistrySource`` / ``RegistryDestination`` for the copy
  engine.

The verbs built on it (pull, push, inspect --remote, tags, delete) and the
public API re-exported for library users live in
:mod:`forklift.registry.client`. Importing this package loads nothing; each
module is imported when used.
"""
