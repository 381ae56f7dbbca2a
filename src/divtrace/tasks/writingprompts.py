"""WritingPrompts (euclaise/writingprompts, test): open-ended story writing."""

from __future__ import annotations

from divtrace.tasks.base import TaskFamily

FAMILY = TaskFamily(
    name="writingprompts",
    hf_id="euclaise/writingprompts",
    split="test",
    required_fields=("prompt",),
    render_text=lambda r: f"Writing prompt: {str(r['prompt']).strip()}\n\nStory:",
    render_user=lambda r: str(r["prompt"]).strip(),
    reference=lambda r: {},
    stop=("\n\nWriting prompt:",),
    paper_query=lambda r: f"{str(r['prompt']).strip()}\n\n",  # keeps the [ WP ] tags
)
