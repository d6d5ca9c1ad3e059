"""The zero-trust path of a Claude call: whether it may go out, and in what form.

:mod:`.identity` establishes who is calling (configured users, OIDC JWTs), :mod:`.policy`
decides what that caller may do (models, token caps, tools, budgets from :mod:`.budget`),
:mod:`.dlp` finds and blocks or redacts secrets and personal data, :mod:`.stream` watches
answers as they stream, and :mod:`.pipeline` runs those steps in order and hands a record of
every attempt to the evidence side (:mod:`claudesec.audit`). :mod:`.client` is the library
adapter (``AuditedAnthropic`` and its async twin, on the SDK's own middleware); the proxy
(:mod:`claudesec.proxy`) and the LangChain integration are adapters over the same pipeline.

Nothing here imports typer or rich; ``anthropic`` is imported by :mod:`.client` alone.
"""
