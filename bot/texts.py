"""What the bot says, in Arabic and in English (for users whose Telegram language is not Arabic)."""

from __future__ import annotations

AR, EN = "ar", "en"


def language(code: str | None) -> str:
    """Arabic for Arabic-language users and for those whose language Telegram does not tell."""
    if not code or code.lower().startswith("ar"):
        return AR
    return EN


_TEXTS: dict[str, dict[str, str]] = {
    "help": {
        AR: (
            "<b>مرحبا!</b> أجيب عن الأسئلة من أرشيف الأخبار باقتباس المقاطع التي تجيب عنها حرفيا، "
            "مع مصدر كل اقتباس (العنوان — المصدر — التاريخ).\n\n"
            "أعرف الآن <b>{articles}</b> مقالا من <b>{outlets}</b> مصدرا، "
            "من {date_min} إلى {date_max}.\n\n"
            "<b>كيف تسأل:</b> اكتب سؤالك بجملة كاملة، مثلا:\n<i>{example}</i>\n\n"
            "زر «المزيد» يعرض نتائج أخرى للسؤال نفسه، وزر 📄 يرسل المقال كاملا.\n"
            "في المجموعات: اذكرني ({mention}) في سؤالك أو رد على إحدى رسائلي.\n\n"
            "يمكنك متابعة السؤال بسؤال قصير مثل <i>ومتى حدث ذلك؟</i> و/new يبدأ موضوعا جديدا. "
            "لتحديد المصدر أو السنة اكتب مثلا <i>من شبكة النبأ: …</i> أو <i>في 2014: …</i>، و/sources يعرض المصادر."
        ),
        EN: (
            "<b>Hello!</b> I answer questions from an archive of Arabic news by quoting the passages "
            "that answer them, word for word, each with its source (title — outlet — date).\n\n"
            "I currently know <b>{articles}</b> articles from <b>{outlets}</b> outlets, "
            "from {date_min} to {date_max}.\n\n"
            "<b>How to ask:</b> write your question as a full sentence (Arabic works best), e.g.:\n"
            "<i>{example}</i>\n\n"
            "“More results” shows further quotes for the same question; 📄 sends the whole article.\n"
            "In groups: mention me ({mention}) in your question or reply to one of my messages.\n\n"
            "Follow up with a short question such as <i>and when was that?</i>; /new starts a new topic. "
            "To keep to one outlet or year, write e.g. <i>from شبكة النبأ: …</i> or <i>in 2014: …</i>; /sources lists the outlets."
        ),
    },
    "example": {AR: "كم قاربا تضرر في فيضانات الميناء؟", EN: "How many boats were damaged when the harbour flooded?"},
    "no_answer": {
        AR: "لم أجد في المقالات ما يجيب عن هذا السؤال. جرّب صياغة أخرى أو كلمات أدق، أو اسأل عن موضوع آخر.",
        EN: "I found nothing in the articles that answers this question. "
        "Try rephrasing it or using more specific words, or ask about something else.",
    },
    "no_question": {
        AR: "لا أجد في رسالتك كلمات أبحث عنها. اكتب سؤالك بالكلمات، مثلا: {example}",
        EN: "Your message has no words I can search for. Write your question in words, for example: {example}",
    },
    "more": {AR: "المزيد ◀", EN: "More results ▶"},
    "previous": {AR: "▶ السابق", EN: "◀ Previous"},
    "article_button": {AR: "📄 {n}", EN: "📄 {n}"},
    "page_header": {AR: "نتائج {first}–{last} عن: <i>{question}</i>", EN: "Results {first}–{last} for: <i>{question}</i>"},
    "no_more": {AR: "لا توجد نتائج أخرى لهذا السؤال.", EN: "There are no further results for this question."},
    "expired": {
        AR: "انتهت صلاحية هذا الزر. اطرح السؤال من جديد من فضلك.",
        EN: "This button has expired. Please ask your question again.",
    },
    "article_gone": {
        AR: "لم يعد هذا المقال في الأرشيف.",
        EN: "This article is no longer in the archive.",
    },
    "too_fast": {
        AR: "أسئلتك كثيرة في وقت قصير 🙂 انتظر {seconds} ثانية ثم اسأل من جديد.",
        EN: "That is a lot of questions in a short time 🙂 Please wait {seconds} seconds and ask again.",
    },
    "too_long": {
        AR: "السؤال طويل جدا ({length} حرفا). اختصره إلى {limit} حرف على الأكثر.",
        EN: "The question is too long ({length} characters). Please keep it under {limit} characters.",
    },
    "text_only": {
        AR: "أفهم الأسئلة المكتوبة فقط. اكتب سؤالك نصا.",
        EN: "I can only answer questions written as text. Please type your question.",
    },
    "error": {
        AR: "عذرا، حدث خطأ أثناء معالجة طلبك. حاول مرة أخرى بعد قليل.",
        EN: "Sorry, something went wrong while handling your request. Please try again in a moment.",
    },
    "operators_only": {
        AR: "هذا الأمر متاح لمشغلي البوت فقط.",
        EN: "This command is only available to the bot's operators.",
    },
    "reindex_started": {
        AR: "بدأ تحديث الفهرس في الخلفية. سأواصل الإجابة عن الأسئلة، وسأخبرك حين ينتهي.",
        EN: "Index update started in the background. I keep answering meanwhile and will report when it is done.",
    },
    "reindex_running": {
        AR: "تحديث الفهرس جار بالفعل؛ سأخبرك حين ينتهي.",
        EN: "An index update is already running; I will report when it is done.",
    },
    "reindex_done": {
        AR: "انتهى تحديث الفهرس: {summary}.\n{state}",
        EN: "Index update finished: {summary}.\n{state}",
    },
    "reindex_switched": {
        AR: "الإصدار الحالي الآن {version}: {articles} مقالا، {chunks} مقطعا.",
        EN: "Now answering from {version}: {articles} articles, {chunks} passages.",
    },
    "reindex_unchanged": {
        AR: "لا تغييرات؛ يبقى الإصدار {version}.",
        EN: "No changes; {version} stays current.",
    },
    "reindex_rejected": {AR: "ملفات مرفوضة:", EN: "Rejected files:"},
    "reindex_failed": {AR: "فشل تحديث الفهرس: {error}", EN: "The index update failed: {error}"},
    "vote_up": {AR: "👍", EN: "👍"},
    "vote_down": {AR: "👎", EN: "👎"},
    "vote_new": {AR: "شكرا! سُجّل تقييمك {vote}.", EN: "Thanks! Your {vote} is recorded."},
    "vote_changed": {AR: "غيّرت تقييمك إلى {vote}.", EN: "Your vote is now {vote}."},
    "vote_same": {AR: "تقييمك {vote} مسجل بالفعل.", EN: "Your {vote} was already recorded."},
    "inline_help": {AR: "اكتب سؤالك بعد اسم البوت", EN: "Type your question after the bot's name"},
    "inline_no_answer": {AR: "لم أجد ما يجيب عن هذا السؤال", EN: "Nothing in the articles answers this"},
    "inline_no_question": {AR: "اكتب سؤالك بالكلمات", EN: "Write your question in words"},
    "inline_too_long": {AR: "السؤال أطول من {limit} حرف", EN: "The question is over {limit} characters"},
    "inline_too_fast": {AR: "انتظر {seconds} ثانية من فضلك", EN: "Please wait {seconds} seconds"},
    "auto_update_done": {
        AR: "تحديث تلقائي للفهرس بعد تغيّر المجلد ({files}): {summary}.\n{state}",
        EN: "Automatic index update after the corpus folder changed ({files}): {summary}.\n{state}",
    },
    "auto_update_failed": {
        AR: "فشل التحديث التلقائي للفهرس ({files}): {error}",
        EN: "The automatic index update failed ({files}): {error}",
    },
    "followup_note": {
        AR: "↩️ قرأته متابعةً لسؤالك: <i>{about}</i> (/new لموضوع جديد)",
        EN: "↩️ Read as a follow-up to: <i>{about}</i> (/new for a new topic)",
    },
    "filter_note": {AR: "🔎 {parts}", EN: "🔎 {parts}"},
    "filter_outlet": {AR: "المصدر: {outlet}", EN: "outlet: {outlet}"},
    "filter_period": {AR: "الفترة: {period}", EN: "period: {period}"},
    "new_done": {
        AR: "حسنا، موضوع جديد: سأقرأ سؤالك التالي دون ربطه بما سبق.",
        EN: "OK, new topic: I will read your next question on its own.",
    },
    "new_nothing": {
        AR: "لا يوجد سؤال سابق أربط به؛ اسأل ما تشاء.",
        EN: "There is no earlier question to forget; ask away.",
    },
    "sources_head": {
        AR: "<b>المصادر</b> ({outlets} مصدرا، {articles} مقالا):",
        EN: "<b>Outlets</b> ({outlets} outlets, {articles} articles):",
    },
    "sources_line": {
        AR: "• {outlet}: {articles} مقالا، {first} – {last}",
        EN: "• {outlet}: {articles} articles, {first} – {last}",
    },
    "sources_hint": {
        AR: "لتحديد مصدر: <i>من {outlet}: سؤالك</i>",
        EN: "To keep to one outlet: <i>from {outlet}: your question</i>",
    },
    "bad_outlet": {
        AR: "لا أعرف مصدرا باسم «{value}». /sources يعرض المصادر التي أعرفها.",
        EN: "I know no outlet called “{value}”. /sources lists the outlets I know.",
    },
    "bad_date": {
        AR: "«{value}» ليس تاريخا أفهمه. اكتب السنة (2014) أو التاريخ (2014-12-18).",
        EN: "“{value}” is not a date I understand. Write a year (2014) or a date (2014-12-18).",
    },
    "narrow_outlet": {AR: "📰 {outlet} فقط", EN: "📰 only {outlet}"},
    "narrow_year": {AR: "📅 {year} فقط", EN: "📅 only {year}"},
}


def text(key: str, lang: str, **values: object) -> str:
    """One message in the user's language, with values filled in (values must already be escaped)."""
    template = _TEXTS[key][lang if lang in (AR, EN) else AR]
    return template.format(**values) if values else template
