"""``claudesec proxy``: the audit pipeline over HTTP for any Anthropic API client.

Claude Code, n8n, MCP servers and SDKs in other languages point ``ANTHROPIC_BASE_URL`` at the
proxy and present a proxy token (``csp_...``) or an OIDC JWT instead of an Anthropic key. The
proxy establishes who is calling, runs the audit pipeline that
:class:`claudesec.guard.client.AuditedAnthropic` runs on (policy, DLP, the audit record),
injects the real key from the key store, and streams the answer back as it arrives.

Modules: :mod:`.tokens` (issued proxy tokens, stored hashed), :mod:`.keysource` (the injected
key, cached and re-read on rotation), :mod:`.auth` (which credential a request carries),
:mod:`.gate` (requests into the pipeline's terms, its refusals into Anthropic's error JSON),
:mod:`.server` (the aiohttp application and its lifecycle), :mod:`.mesh` (Istio/Linkerd
manifests that force pods' Claude traffic through the proxy, and their linter).

Domain code only: nothing here imports typer or rich, and aiohttp is imported by
:mod:`.server` alone, so ``claudesec --help`` never loads it.
"""
