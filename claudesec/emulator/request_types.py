"""What a Messages request may hold, as data: roles, content block types, tool types,
thinking modes, top-level fields; taken from the anthropic SDK's own request types.

The emulator checks requests against these tables so that what current clients send (Claude
Code's ``system``-role messages, adaptive thinking, ``context_management``, ``output_config``,
every block and server-tool type) is accepted, and a misspelt block type is refused as the
API refuses it. ``tests/emulator/test_request_types.py`` walks ``anthropic.types`` (and
``anthropic.types.beta``) and fails when the SDK knows a tag these tables do not, so a new SDK
release names what to add here. Top-level fields not listed are accepted: the API takes new
fields behind ``anthropic-beta`` headers before any SDK types them.
"""

from __future__ import annotations

SDK_VERSION = "2.16"  # the anthropic release these tables were taken from

ROLES = frozenset({"user", "assistant", "system"})

# ``type`` tags of the blocks a user or assistant message may carry (MessageParam and
# BetaMessageParam content unions).
CONTENT_BLOCK_TYPES = frozenset(
    {
        "advisor_tool_result",
        "bash_code_execution_tool_result",
        "code_execution_tool_result",
        "compaction",
        "container_upload",
        "document",
        "fallback",
        "image",
        "mcp_tool_listing",
        "mcp_tool_result",
        "mcp_tool_use",
        "redacted_thinking",
        "search_result",
        "server_tool_use",
        "text",
        "text_editor_code_execution_tool_result",
        "thinking",
        "tool_addition",
        "tool_removal",
        "tool_result",
        "tool_search_tool_result",
        "tool_use",
        "web_fetch_tool_result",
        "web_search_tool_result",
    }
)

# ``type`` tags of server and client-defined tools (ToolUnionParam and its beta twin); a custom
# tool has no type or "custom", and needs a name and an input_schema.
TOOL_TYPES = frozenset(
    {
        "advisor_20260301",
        "bash_20241022",
        "bash_20250124",
        "browser_toolset_20260801",
        "code_execution_20250522",
        "code_execution_20250825",
        "code_execution_20260120",
        "code_execution_20260521",
        "computer_20241022",
        "computer_20250124",
        "computer_20251124",
        "computer_toolset_20260801",
        "custom",
        "mcp_toolset",
        "memory_20250818",
        "text_editor_20241022",
        "text_editor_20250124",
        "text_editor_20250429",
        "text_editor_20250728",
        "tool_search_tool_bm25",
        "tool_search_tool_bm25_20251119",
        "tool_search_tool_regex",
        "tool_search_tool_regex_20251119",
        "web_fetch_20250910",
        "web_fetch_20260209",
        "web_fetch_20260309",
        "web_fetch_20260318",
        "web_search_20250305",
        "web_search_20260209",
        "web_search_20260318",
    }
)

THINKING_TYPES = frozenset({"adaptive", "between_tools", "disabled", "enabled"})

TOOL_CHOICE_TYPES = frozenset({"any", "auto", "none", "tool"})

# Top-level fields that must be JSON objects when present (the rest are checked elsewhere or
# passed over).
OBJECT_FIELDS = ("context_management", "output_config", "metadata", "thinking", "tool_choice")

THINKING_MIN_BUDGET = 1024


def expected_tags(tags: frozenset[str]) -> str:
    """The API's way of listing the tags a union accepts: ``'a', 'b', 'c'``."""
    return ", ".join(f"'{tag}'" for tag in sorted(tags))
