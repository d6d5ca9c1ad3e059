"""Role presets: the settings a kind of Claude client needs, as one table of data.

A role names one with ``preset = "claude-code"`` in its ``[policy.roles.NAME]`` table; the
preset's values stand in for every setting the role does not set itself (an explicit setting
always wins). Each value comes with the threat it accepts, which ``docs/proxy.md`` lists, so an
admin who takes a preset knows what they let through and which setting to tighten.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    """One preset value and the threat it accepts."""

    value: Any
    accepts: str


@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of role settings for one kind of client."""

    name: str
    client: str
    settings: MappingProxyType[str, Setting]

    def values(self) -> dict[str, Any]:
        return {key: setting.value for key, setting in self.settings.items()}


def _preset(name: str, client: str, **settings: Setting) -> Preset:
    return Preset(name, client, MappingProxyType(settings))


_ANY_CLAUDE = Setting(
    ["claude-*"],
    "any Claude model, the most expensive included: pin models to a list to limit cost",
)

PRESETS: MappingProxyType[str, Preset] = MappingProxyType(
    {
        preset.name: preset
        for preset in (
            _preset(
                "claude-code",
                "Claude Code (the `claude` CLI and IDE extensions)",
                models=_ANY_CLAUDE,
                max_tokens=Setting(
                    32_000,
                    "long answers (Claude Code asks for up to 128 000 output tokens; clamped "
                    "to 32 000, not refused)",
                ),
                max_tokens_mode=Setting(
                    "clamp", "a request over the cap is sent with the cap instead of refused"
                ),
                max_input_tokens=Setting(
                    400_000,
                    "large prompts: Claude Code sends its system prompt, tool definitions and "
                    "whole files (~20 000 tokens before the user types anything)",
                ),
                tools_allowed=Setting(
                    True,
                    "tool use: the model may ask the client to read files and run commands; "
                    "what runs is decided by Claude Code's own permission prompts, not here",
                ),
                dlp=Setting(
                    "block",
                    "none beyond the allowlist below: a prompt holding a secret or personal data "
                    "the user pasted is refused with the reason (Claude Code shows it)",
                ),
                dlp_allow_values=Setting(
                    ["noreply@anthropic.com"],  # a TOML array: presets fill in the file's data
                    "the one fixed address Claude Code's own system prompt carries (its commit "
                    "co-author trailer); still counted in every record as dlp_allowed_counts",
                ),
            ),
            _preset(
                "agent",
                "agents built on an SDK, MCP clients and servers, LangChain",
                models=_ANY_CLAUDE,
                max_tokens=Setting(16_000, "answers up to 16 000 tokens (clamped, not refused)"),
                max_tokens_mode=Setting(
                    "clamp", "a request over the cap is sent with the cap instead of refused"
                ),
                max_input_tokens=Setting(
                    200_000, "long contexts: tool results (MCP, retrieval) grow every turn"
                ),
                tools_allowed=Setting(
                    True,
                    "tool use, MCP connectors included: the agent runs what the model asks "
                    "for, so its tools must be safe to call with model-chosen arguments",
                ),
                dlp=Setting(
                    "redact",
                    "secrets and personal data in prompts and tool results are replaced and "
                    "the call goes on (an unattended agent cannot fix a refused prompt)",
                ),
            ),
            _preset(
                "workflow",
                "n8n, Zapier, Make and other workflow tools (unattended, customer data)",
                models=_ANY_CLAUDE,
                max_tokens=Setting(4_096, "answers up to 4 096 tokens (clamped, not refused)"),
                max_tokens_mode=Setting(
                    "clamp", "a request over the cap is sent with the cap instead of refused"
                ),
                max_input_tokens=Setting(100_000, "prompts up to ~100 000 tokens"),
                tools_allowed=Setting(
                    False,
                    "none: a workflow's model may not call tools (set tools_allowed = true "
                    "for an n8n AI Agent node, which declares its tools)",
                ),
                dlp=Setting(
                    "block",
                    "none: workflows move customer data in bulk with nobody watching, so a "
                    "secret or personal datum refuses the call (the workflow sees the reason)",
                ),
            ),
        )
    }
)
