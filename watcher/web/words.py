"""The words of the plugin's pages in the archive's language (``[settings] language``: French by default, English
on request), and how the pages show a date, a kind of act, an authority, a language, a facet value.

Every date a person reads is the legal date (the JO issue, the délibération's day), else the day of publication
in the archive's time zone (Europe/Paris): never the UTC day of a timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from watcher.legal import legal_dates, natures
from watcher.util.text import fold

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "published_on": "publié le", "version": "version", "read_at_source": "Lire le texte sur le site de la source",
        "themes": "Thèmes", "theme": "thème", "score": "confiance", "origin": "origine", "reason": "pourquoi",
        "model": "modèle", "feed": "flux", "no_theme": "Aucun thème.", "untagged": "sans thème",
        "identifiers": "Identifiants", "none": "Aucun.", "citing": "autres textes qui le citent",
        "act_page": "la fiche de l'acte", "linked_items": "Textes liés", "diff": "ce qui a changé (différences)",
        "act_search": "Le chercher sur le site officiel", "act_official": "Le texte officiel",
        "act_no_link": "Pas de page officielle pour cet identifiant.", "act_in_archive": "L'acte dans l'archive",
        "act_official_page": "page officielle", "act_not_archived": "Absent de l'archive (seuls les textes qui le "
        "citent y sont).", "act_citing": "Ce qui le cite, par date", "act_how": "comment", "act_item": "texte",
        "act_nothing_cites": "Rien dans l'archive ne le cite.", "how_cites": "cite", "how_applies": "applique",
        "how_amends": "modifie", "how_rectifies": "rectifie", "how_publishes": "publie",
        "what_changed": "Ce qui a changé", "one_version": "Une seule version : rien n'a changé depuis le premier "
        "enregistrement.",
        "colon": " :", "link_cites": "cite ce texte", "link_applies": "applique ce texte",
        "link_amends": "modifie ce texte", "link_rectifies": "rectifie ce texte", "link_publishes": "publie ce texte",
        "versions": "Versions", "seen": "vu le", "title": "titre", "nature": "nature de l'acte",
        "all_versions": "Toutes les versions avec leur texte", "similar": "Textes proches",
        "all_columns": "Toutes les colonnes", "this_data_as": "Ces données en", "date": "date",
        "source": "source", "authority": "autorité", "lang": "langue", "month": "mois", "empty": "(non renseigné)",
        "zero": "Aucun texte", "origin_model": "modèle", "origin_rule": "règles", "origin_human": "juriste",
        "newsletter": "Lettre d'information", "editor": "Lettre : édition", "issues": "Lettres publiées",
        "weekly_newsletter": "Lettre hebdomadaire", "subscribers": "abonné(s) actif(s)",
        "sent_through": "envoyée par le canal", "no_channel": "aucun canal d'envoi configuré (export en ligne de "
        "commande)", "week_label": "Semaine (ISO, par ex. 2026-W23 ; vide : cette semaine)",
        "build": "Préparer ou ouvrir le brouillon de la semaine", "drafts": "Brouillons et lettres",
        "state": "état", "shortlisted": "retenus", "last_change": "dernière modification", "no_draft":
        "Aucun brouillon pour l'instant.", "issue": "lettre", "draft": "Brouillon", "week_of": "semaine du",
        "conflict": "Conflit", "unsaved": "Ce que vous avez écrit, non enregistré :", "of": "sur",
        "items_shortlisted": "textes retenus", "channel": "canal", "preview": "Aperçu tel qu'envoyé",
        "health": "État des sources cette semaine (éditeurs seulement)", "intro": "Introduction",
        "drop": "Écarter", "keep": "Retenir", "up": "monter", "down": "descendre",
        "abstract": "Résumé pour les lecteurs", "no_item": "Aucun texte classé cette semaine.",
        "save": "Enregistrer les textes", "publish": "Publier",
        "confirm_publish": "Publier et envoyer cette lettre aux abonnés ?", "same_act": "même acte que",
        "state_draft": "brouillon", "state_published": "publiée", "published": "publiée le",
        "no_issue": "Aucune lettre publiée pour l'instant.", "also_tables": "Aussi en tables :",
        "its_items": "ses textes", "unsubscribe": "Se désabonner", "stop_sending": "Ne plus envoyer la lettre à",
        "invalid_link": "Ce lien de désabonnement n'est pas valide (ou a déjà servi).",
        "unsubscribed": "Vous êtes désabonné : plus aucune lettre ne sera envoyée à cette adresse.",
        "already_off": "Cette adresse n'était déjà plus sur la liste.", "archive": "Archive",
        "parameters": "Paramètres", "since_hint": "vide : le lundi de cette semaine", "until_hint":
        "vide : aujourd'hui", "since": "depuis le", "until": "jusqu'au", "results": "résultats",
        "lang_fr": "français", "lang_en": "anglais",
    },
    "en": {
        "published_on": "published on", "version": "version", "read_at_source": "Read it at the source",
        "themes": "Themes", "theme": "theme", "score": "confidence", "origin": "origin", "reason": "why",
        "model": "model", "feed": "feed", "no_theme": "No theme.", "untagged": "no theme",
        "identifiers": "Identifiers", "none": "None.", "citing": "other items citing it",
        "act_page": "the act's page", "linked_items": "Linked items", "diff": "what changed (diff)",
        "act_search": "Search it on the official site", "act_official": "The official text",
        "act_no_link": "No official page for this identifier.", "act_in_archive": "The act in the archive",
        "act_official_page": "official page", "act_not_archived": "Not in the archive (only items that name it are).",
        "act_citing": "What names it, in date order", "act_how": "how", "act_item": "item",
        "act_nothing_cites": "Nothing in the archive names it.", "how_cites": "cites", "how_applies": "applies",
        "how_amends": "amends", "how_rectifies": "rectifies", "how_publishes": "publishes",
        "what_changed": "What changed", "one_version": "One version only: nothing changed since it was first stored.",
        "colon": ":", "link_cites": "cites this text", "link_applies": "applies this text",
        "link_amends": "amends this text", "link_rectifies": "rectifies this text", "link_publishes": "publishes this text",
        "versions": "Versions", "seen": "seen on", "title": "title", "nature": "kind of act",
        "all_versions": "All versions with their text", "similar": "Similar items",
        "all_columns": "Every column", "this_data_as": "This data as", "date": "date",
        "source": "source", "authority": "authority", "lang": "language", "month": "month", "empty": "(none)",
        "zero": "No item", "origin_model": "model", "origin_rule": "rules", "origin_human": "lawyer",
        "newsletter": "Newsletter", "editor": "Newsletter editor", "issues": "Newsletter issues",
        "weekly_newsletter": "Weekly newsletter", "subscribers": "active subscriber(s)",
        "sent_through": "sent through channel", "no_channel": "no sending channel configured (export from the CLI)",
        "week_label": "Week (ISO, e.g. 2026-W23; empty: this week)",
        "build": "Build or open the week's draft", "drafts": "Drafts and issues",
        "state": "state", "shortlisted": "shortlisted", "last_change": "last change", "no_draft": "No draft yet.",
        "issue": "issue", "draft": "Draft", "week_of": "week of",
        "conflict": "Conflict", "unsaved": "What you wrote, not saved:", "of": "of",
        "items_shortlisted": "items shortlisted", "channel": "channel", "preview": "Preview as e-mailed",
        "health": "Source health this week (editors only)", "intro": "Introduction",
        "drop": "Drop", "keep": "Shortlist", "up": "move up", "down": "move down",
        "abstract": "Abstract for the readers", "no_item": "No tagged item this week.",
        "save": "Save texts", "publish": "Publish",
        "confirm_publish": "Publish and send this issue to the list?", "same_act": "same act as",
        "state_draft": "draft", "state_published": "published", "published": "published on",
        "no_issue": "No issue published yet.", "also_tables": "Also as tables:",
        "its_items": "its items", "unsubscribe": "Unsubscribe", "stop_sending": "Stop sending the newsletter to",
        "invalid_link": "This unsubscribe link is not valid (or was already used).",
        "unsubscribed": "You are unsubscribed. No further issue will be sent to this address.",
        "already_off": "This address was already off the list.", "archive": "Archive",
        "parameters": "Parameters", "since_hint": "empty: this week's Monday", "until_hint": "empty: today",
        "since": "since", "until": "until", "results": "results",
        "lang_fr": "French", "lang_en": "English",
    },
}

# One display name per authority, whatever the source wrote (folded spelling -> name)
_AUTHORITIES: dict[str, str] = {
    "commission nationale de l'informatique et des libertes": "CNIL",
    "agence nationale de securite du medicament et des produits de sante": "ANSM",
    "european data protection board": "EDPB", "comite europeen de la protection des donnees": "EDPB",
    "plateforme des donnees de sante": "Health Data Hub", "haute autorite de sante": "HAS",
}
_MONTH = "%Y-%m"


def authority_name(raw: Any) -> str:
    """The one display name of an authority (``Commission nationale de l'informatique et des libertés`` and
    ``CNIL`` are both shown ``CNIL``); an authority not listed is shown as written."""
    text = " ".join(str(raw or "").split())
    return _AUTHORITIES.get(fold(text), text)


@dataclass(frozen=True)
class Words:
    """What the templates call: ``w`` (the words), ``day`` (a legal date in words), ``label`` (a facet value)."""

    lang: str
    timezone: str
    theme_labels: Mapping[str, str]
    source_labels: Mapping[str, str]

    @property
    def w(self) -> dict[str, str]:
        return WORDS[self.lang]

    def day(self, legal_date: Any = "", published: Any = "") -> str:
        """'13 juin 2026': the legal date, else the day of ``published`` in the archive's time zone."""
        iso = str(legal_date or "")[:10] or legal_dates.local_day(published, ZoneInfo(self.timezone))
        return legal_dates.spoken(iso, self.lang) or iso

    def label(self, column: str, value: Any) -> str:
        """A facet value (or a cell) as a person reads it, in the archive's language."""
        text = "" if value is None else str(value)
        if column in ("themes", "theme"):
            return self.theme_labels.get(text, text) if text not in ("", "[]") else self.w["untagged"]
        if not text:
            return self.w["empty"]
        if column == "nature":
            return natures.label(text, self.lang)
        if column == "authority":
            return authority_name(text)
        if column == "lang":
            return self.w.get(f"lang_{text}", text)
        if column == "source":
            return self.source_labels.get(text, text)
        if column in ("legal_date", "published") and len(text) == 7:  # a month facet: 2026-06
            spoken = legal_dates.spoken(f"{text}-01", self.lang)
            return spoken.split(" ", 1)[1] if " " in spoken else text
        if column == "origin":
            return self.w.get(f"origin_{text}", text)
        return text

    def reason(self, reason: Any, origin: Any, title: Any = "", summary: Any = "") -> str:
        """A tag's reason as the messages word it ('mots : données de santé, SNDS'), in the archive's language."""
        from watcher.notify.render import short_reason

        return short_reason(str(reason or ""), str(origin or ""), self.lang, text=f"{title or ''}\n{summary or ''}")

    def score(self, value: Any) -> str:
        """0.91 -> '0,91' (French) or '0.91'."""
        text = f"{float(value or 0):.2f}"
        return text.replace(".", ",") if self.lang == "fr" else text

    def template_vars(self) -> dict[str, Any]:
        calls: dict[str, Callable[..., str]] = {"watcher_day": self.day, "watcher_label": self.label,
                                                "watcher_authority": authority_name, "watcher_reason": self.reason,
                                                "watcher_score": self.score}
        return {"w": self.w, "watcher_lang": self.lang, **calls}
