"""CNN/DailyMail (abisee/cnn_dailymail, 3.0.0, test): summarise a news article.

Records hold ``article``, ``highlights`` (the bullet-point summary, one highlight per line; the
reference) and ``id``. Prompts and stops as in :mod:`divtrace.tasks.news_summary`.
"""

from __future__ import annotations

from divtrace.tasks.news_summary import news_summary_family

INSTRUCTION = "Summarize the following news article in a few sentences."

FAMILY = news_summary_family(
    "cnn_dailymail",
    "abisee/cnn_dailymail",
    hf_config="3.0.0",
    article_field="article",
    reference_field="highlights",
    instruction=INSTRUCTION,
    paper_stop=("\n\n",),
)
