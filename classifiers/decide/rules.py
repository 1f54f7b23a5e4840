"""Transparent theme rules: keywords and regexes per theme (FR and EN), legal identifiers, the source and the
issuing authority, and negative rules for what the guideline calls off-topic.

Every rule that fires leaves one ``Evidence`` (theme, label, weight): the label is what a lawyer reads in the tag's
reason ("matched: retraitement, usage unique"; "identifier: règlement (UE) 2024/1689 (AI Act)"). The evidence of a
theme adds up to a logit::

    logit = BIAS + source prior + min(CAP, keywords + identifiers + combinations) + negatives

so one strong keyword (4) gives the theme alone (logit 2, p = 0.88), one medium keyword (2.5) just does, one weak
keyword (1) never does alone, and an off-topic rule (appointment, finance regulator, tech press) outweighs keywords.
A keyword found only in the summary counts ``SUMMARY_FACTOR`` of its weight. The hybrid classifier adds the model's
opinion to this logit; on their own the rules are a complete classifier (``HybridClassifier()`` without an
embedder).

Patterns are matched on folded text (lower case, no accents, plain apostrophes: see ``classifiers.decide.keyword.fold``),
except the ``C(...)`` ones (short acronyms such as ``IA``, ``AI``, ``SNDS``), matched case-sensitively.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

from watcher.legal.identifiers import by_scheme
from watcher.models import Item
from watcher.util.text import fold

VERSION = "4"  # bump whenever a rule changes: stored tags record the version that gave them
BIAS = -2.0
CAP = 6.0
SUMMARY_FACTOR = 0.75
STRONG, MEDIUM, WEAK = 4.0, 2.5, 1.0
SOURCE_PRIOR = 3.0
HD, AI, DMUU, PD, HP = "health-data", "ai", "dmuu-reprocessing", "personal-data", "health-products"


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    label: str
    weight: float
    folded: bool = True

    def search(self, folded: str, raw: str) -> bool:
        return bool(self.regex.search(folded if self.folded else raw))


def W(expr: str, label: str, weight: float = STRONG) -> Pattern:
    """A pattern on folded text, anchored on word boundaries."""
    return Pattern(re.compile(rf"(?<!\w)(?:{expr})(?!\w)"), label, weight)


def C(expr: str, label: str, weight: float = STRONG) -> Pattern:
    """A case-sensitive pattern on the raw text (acronyms)."""
    return Pattern(re.compile(rf"(?<![\w-])(?:{expr})(?!\w)"), label, weight, folded=False)


@dataclass(frozen=True)
class Evidence:
    theme: str
    label: str
    weight: float
    kind: str = "keyword"  # keyword | identifier | source | authority | combination | negative | model


# -- keywords per theme -------------------------------------------------------------------------------------------
KEYWORDS: dict[str, tuple[Pattern, ...]] = {
    HD: (
        W(r"donnees (?:personnelles |medicales )?(?:de|relatives a la) sante", "données de santé"),
        W(r"health[- ]data|health records?|electronic health|patient data|medical data|medical records?",
          "health data"),
        C(r"SNDS|HDH|EHDS|DMP|CESREES|HDS", "health-data acronym"),
        W(r"systeme national des donnees de sante|health data hub|plateforme des donnees de sante",
          "SNDS / Health Data Hub"),
        W(r"espace europeen des donnees de sante|european health data space", "EHDS"),
        W(r"hebergeurs? de donnees de sante|hebergement de(?:s)? donnees de sante", "hébergement de données de santé"),
        W(r"entrepots? de donnees(?: de sante)?", "entrepôt de données de santé"),
        W(r"dossiers? medica(?:l|ux)(?: partages?)?|mon espace sante|espace numerique de sante|dossiers? patients?|"
          r"dossiers? pharmaceutiques?", "dossier médical"),
        W(r"cartes? vitale|e-prescription|prescriptions? (?:electroniques?|numeriques?)|ordonnances? numeriques?|"
          r"messageries? securisees? de sante|mssante|segur du numerique|identite nationale de sante",
          "services numériques en santé", MEDIUM),
        W(r"health insurance data|claims data|donnees de remboursement", "données de l'assurance maladie"),
        W(r"methodologies? de reference|mr-?00\d|recherches? (?:impliquant|n'impliquant pas) la personne humaine",
          "méthodologie de référence / recherche en santé"),
        W(r"recherches? en sante|health research|etudes? en sante", "recherche en santé", MEDIUM),
        W(r"donnees (?:genetiques|medicales|de l'assurance maladie)|genetic data", "données médicales"),
        W(r"stopcovid|tousanticovid|si-dep|contact[- ]tracing|passe? sanitaire", "données sanitaires covid"),
        W(r"teleconsultations?|telesante|telemedecine|telehealth|telesoins?", "télésanté", MEDIUM),
        W(r"e-sante|sante numerique|numerique en sante|digital health|e-?health|interoperabilite", "e-santé",
          MEDIUM),
        W(r"agence du numerique en sante|identifiant national de sante", "Agence du numérique en santé"),
        W(r"secret medical|imagerie medicale|dicom", "secret médical / imagerie", MEDIUM),
    ),
    AI: (
        W(r"intelligences? artificielles?|artificial intelligence", "intelligence artificielle"),
        C(r"IA|AI|IAG|GenAI|LLMs?|GPAI|RIA", "IA/AI"),
        W(r"ai act|reglement (?:europeen )?sur l'(?:ia|intelligence artificielle)", "AI Act / RIA"),
        W(r"videosurveillance algorithmique|videoprotection algorithmique|cameras? (?:dites )?[\"« ]*augmentees?",
          "vidéosurveillance algorithmique"),
        W(r"reconnaissance faciale|facial recognition", "reconnaissance faciale"),
        W(r"logiciels? d'analyse (?:video|d'images)|analyse video (?:automatisee|algorithmique|intelligente)|"
          r"video analytics", "analyse vidéo algorithmique"),
        W(r"ia agentique|agentic ai|agents? (?:d')?ia\b|ai agents?", "IA agentique"),
        W(r"vehicules? autonomes?|autonomous (?:vehicles?|driving|cars?|taxis?)|robotaxis?|voitures? autonomes?",
          "véhicules autonomes", MEDIUM),
        W(r"chatbots?|agents? conversationnels?|ia conversationnelle|chatgpt|openai|mistral ai|midjourney|"
          r"deepfakes?|hypertrucages?", "IA générative / chatbot"),
        W(r"(?:grands? )?modeles? de langage|large language models?|generative|ia generative|foundation models?",
          "modèles de langage / IA générative"),
        W(r"machine learning|apprentissage (?:automatique|profond)|deep learning|reseaux? de neurones|"
          r"neural networks?", "apprentissage automatique"),
        W(r"algorithm(?:e|es|ique|iques|s|ic)?", "algorithme", MEDIUM),
        W(r"decisions? (?:individuelles? )?automatisees?|automated decision(?:-making)?", "décision automatisée",
          MEDIUM),
        W(r"systemes? d'ia|modeles? d'ia", "système d'IA"),
    ),
    DMUU: (
        W(r"dispositifs? medicaux (?:a|d'un) usage unique|single[- ]use (?:medical )?devices?|dmuu",
          "dispositif médical à usage unique", MEDIUM),
        W(r"retraitement|reprocess(?:ing|ed)?|remanufactur(?:ing|ed)?|remise a neuf", "retraitement", WEAK),
    ),
    PD: (
        W(r"rgpd|gdpr|reglement general sur la protection des donnees|general data protection regulation",
          "RGPD"),
        W(r"donnees (?:a caractere )?personnel(?:le)?s?|personal data|traitements? automatises? de donnees|"
          r"informations? nominatives?", "données personnelles"),
        W(r"protection des donnees|data protection|vie privee|privacy", "protection des données / vie privée"),
        W(r"cnil|commission nationale de l'informatique et des libertes|informatique et libertes", "CNIL"),
        W(r"edpb|edps|cepd|comite europeen de la protection des donnees|"
          r"controleur europeen de la protection des donnees|autorites? de protection des donnees|data protection "
          r"authorit(?:y|ies)|autorites? de controle (?:nationales?|europeennes?|chargees? de la protection)",
          "EDPB / CEPD"),
        W(r"cookies?|traceurs?|trackers?|pixels? de suivi|tracking pixels?", "cookies et traceurs"),
        C(r"DPO|DPD", "DPO"),
        W(r"delegues? a la protection des donnees|data protection officers?", "DPO"),
        W(r"violations? de (?:donnees|securite)|data breach(?:es)?|fuites? de donnees|vols? de donnees|"
          r"donnees (?:\w+ )?(?:derobees|volees|exfiltrees|piratees)", "violation de données"),
        W(r"droit (?:d'acces|a l'effacement|a l'oubli|d'opposition|de rectification)|right (?:of access|to erasure|"
          r"to be forgotten)|data subjects?", "droits des personnes"),
        W(r"transferts? (?:internationaux )?de donnees (?:personnelles|a caractere personnel|vers|hors|en dehors|"
          r"a l'etranger|aux etats-unis)|transferts? internationaux|data transfers?|clauses contractuelles types|standard contractual clauses|"
          r"privacy shield|data privacy framework", "transferts de données"),
        W(r"videosurveillance|videoprotection|cameras?[- ]pietons|body[- ]?cams?|biometri\w*|geolocalisation",
          "surveillance / biométrie", MEDIUM),
        W(r"prospection (?:commerciale|politique)|courtiers? en donnees|data brokers?", "prospection"),
        W(r"pseudonymis\w*|anonymis\w*|pseudonymi[sz]\w*|anonymi[sz]\w*", "pseudonymisation", MEDIUM),
        W(r"metadonnees de communication|conservation des donnees|data retention", "conservation des données"),
        W(r"consentement|consent|identite numerique|donnees de connexion", "consentement", WEAK),
        W(r"traitements? de donnees|fichiers? (?:de police|automatises?|nationaux?|des personnes)|profilage|profiling|"
          r"e-?privacy|noyb|schrems", "traitement de données", MEDIUM),
        W(r"deliberation n. \d{4}-\d{3} du .{5,40} portant avis sur (?:un|le) projet", "délibération portant avis",
          MEDIUM),
    ),
    HP: (
        W(r"medicaments?|medicines?|medicinal products?|specialites? pharmaceutiques?|pharmaceuti\w+",
          "médicament"),
        W(r"dispositifs? medicaux|medical devices?|diagnostic in vitro|in vitro diagnostics?|dmdiv|ivdr",
          "dispositif médical"),
        C(r"ANSM|MDR|IVDR|EMA|AMM|LPP|CEPS|MITM|ATU|CPC", "produits de santé (sigle)"),
        W(r"ansm|agence nationale de securite du medicament|agence europeenne des medicaments|"
          r"european medicines agency", "ANSM / EMA"),
        W(r"rappels? de (?:lots?|produits?)|rappel du lot|retraits? de lots?|product recalls?", "rappel de lots"),
        W(r"ruptures? (?:de stock|d'approvisionnement|de medicaments)|tensions? (?:d'approvisionnement|en )|"
          r"penuries? de medicaments|drug shortages?", "rupture / tension d'approvisionnement"),
        W(r"autorisations? de mise sur le marche|marketing authori[sz]ations?|acces precoce|acces compassionnel|"
          r"prescription compassionnelle", "AMM / accès dérogatoire"),
        W(r"liste des produits et prestations|remboursables aux assures sociaux|prix (?:des|de) (?:specialites|"
          r"medicaments)", "prix et remboursement"),
        W(r"pharmacovigilance|materiovigilance|reactovigilance|hemovigilance|police sanitaire", "vigilance"),
        W(r"pharmacies?|pharmaciens?|officines?|dispensation|preparations? magistrales?", "pharmacie", 3.0),
        W(r"comprimes?|gelules?|solution (?:injectable|buvable|pour perfusion)|suspension buvable|collyre|"
          r"seringues? preremplies?|poudre pour|pellicule|perfusion|emplatre", "forme pharmaceutique"),
        W(r"\d+(?:[,.]\d+)? ?(?:mg|microgrammes?|ml)", "dosage", MEDIUM),
        W(r"vaccins?|biosimilaires?|generiques?|produits sanguins|stupefiants|audioprotheses?|aides auditives|"
          r"endoprotheses?|protheses?|implants?", "produit de santé", MEDIUM),
        W(r"produits de sante|health products", "produits de santé"),
        W(r"bonnes pratiques de (?:preparation|fabrication|distribution|pharmacovigilance|dispensation)|"
          r"essais cliniques|clinical trials?|substances veneneuses|autotests?|tests? (?:antigeniques|rapides)",
          "réglementation des produits de santé", MEDIUM),
        W(r"lois? (?:n. [\d-]+ du [\w ]+ )?de financement de la securite sociale", "LFSS", MEDIUM),
    ),
}

# -- legal identifiers: EU acts (number -> theme, name), French acts, code articles ---------------------------------
EU_ACTS: dict[str, tuple[str, str]] = {
    "2016/679": (PD, "règlement (UE) 2016/679 (RGPD)"),
    "2018/1725": (PD, "règlement (UE) 2018/1725 (protection des données, institutions de l'UE)"),
    "2002/58": (PD, "directive 2002/58/CE (vie privée et communications électroniques)"),
    "95/46": (PD, "directive 95/46/CE (protection des données)"),
    "2016/680": (PD, "directive (UE) 2016/680 (données, police-justice)"),
    "2024/1689": (AI, "règlement (UE) 2024/1689 (AI Act)"),
    "2025/327": (HD, "règlement (UE) 2025/327 (espace européen des données de santé)"),
    "2017/745": (HP, "règlement (UE) 2017/745 (dispositifs médicaux, MDR)"),
    "2017/746": (HP, "règlement (UE) 2017/746 (diagnostic in vitro, IVDR)"),
    "2001/83": (HP, "directive 2001/83/CE (code communautaire du médicament)"),
    "726/2004": (HP, "règlement (CE) 726/2004 (médicaments, EMA)"),
    "536/2014": (HP, "règlement (UE) 536/2014 (essais cliniques)"),
}
FR_ACTS: dict[str, tuple[str, str]] = {
    "2025-895": (DMUU, "décret n° 2025-895 (expérimentation du retraitement des DMUU)"),
    "78-17": (PD, "loi n° 78-17 (informatique et libertés)"),
    "2018-493": (PD, "loi n° 2018-493 (protection des données personnelles)"),
}
_BARE_EU = re.compile(r"(?<![\d/])(" + "|".join(re.escape(n) for n in EU_ACTS) + r")(?![\d/])")
_CELEX = re.compile(r"\b3(\d{4})[RL](\d{4})\b")
CODE_ARTICLES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\bl\. ?162-(?:16|17|18|22-7)\b|\bl\. ?165-\d"), HP,
     "code de la sécurité sociale (prix, remboursement des produits de santé)"),
    (re.compile(r"\b[lr]\. ?5(?:1[0-4]|2[0-3])\d-\d+.{0,80}code de la sante publique"), HP,
     "code de la santé publique, 5e partie (produits de santé)"),
    (re.compile(r"\bl\. ?1461-\d|\bl\. ?1111-8\b"), HD, "code de la santé publique (SNDS, hébergement de données)"),
)

# -- combinations -------------------------------------------------------------------------------------------------
HEALTH_CONTEXT = W(r"sante|patients?|medica(?:l|ux|le|les)|hopita\w*|soins|maladies?|health|hospitals?|"
                   r"(?:essais?|recherches?|etudes?) cliniques?|clinical (?:trials?|research|stud(?:y|ies))|"
                   r"sick(?: leave)?|arrets? (?:de travail|maladie)|pharmac\w*|medecins?|doctors?|therapeuti\w*",
                   "contexte santé")
DATA_CONTEXT = W(r"donnees|data|traitements? de donnees|rgpd|gdpr|cnil|fichiers?|hebergement|pseudonymis\w*|"
                 r"anonymis\w*|reidentification", "contexte données")
LEGAL_ANGLE = W(r"regul\w*|reglement\w*|legislat\w*|lois?|laws?|legal|juridiques?|droits?|rights?|complian\w*|"
                r"conformite|gouvernance|governance|autorites?|authorit\w*|cnil|edpb|edps|commission|tribunal|"
                r"court|cour|conseil d'etat|conseil constitutionnel|juges?|arrets?|decisions?|contrats?|contracts?|"
                r"plagiat|copyright|droit d'auteur|lobbying|"
                r"certifications?|ethique|ethics|sanctions?|amendes?|fined|guides?|recommandations?|"
                r"consultation|directive|policy|politique|responsabilite|liability|lawsuits?|litiges?|"
                r"accused|menaces?|securite|regulateurs?|regulators?|supervis\w*|souverainete|strategie",
                "angle juridique")
REPROCESSING = W(r"retraitement|reprocess(?:ing|ed)?|remanufactur(?:ing|ed)?|remise a neuf", "retraitement")
DEVICE_CONTEXT = W(r"dispositifs? medicaux|medical devices?|usage unique|single[- ]use|dmuu|mdr", "dispositif")
MDR_ARTICLE_17 = re.compile(r"article 17 (?:du |of the )?(?:reglement \(ue\) 2017/745|mdr|"
                            r"reglement (?:europeen )?(?:relatif aux|sur les) dispositifs medicaux|"
                            r"medical devices? regulation)")
DMUU_ORDER = re.compile(r"arrete du 4 fevrier 2026.{0,200}(?:experimentation|dispositifs medicaux|retraitement)")

# -- negative rules (off-topic for every theme) ----------------------------------------------------------------------
FINANCE = "régulation financière / LCB-FT (sans angle données ou IA)"
OFF_TOPIC: tuple[Pattern, ...] = (
    W(r"portant nomination|est nommee?|sont nommes|nomination d[eu']|appoints?|appointed|new co-chair|"
      r"avis de vacance|admission a la retraite|changement de nom|tableau d'avancement|portant integration",
      "nomination / carrière", -6.0),
    W(r"catastrophe naturelle|conventions? collectives?|avenants? salariaux|extension d'(?:un )?(?:accord|avenant)|"
      r"accord regional|concours (?:national|commun|d'acces|professionnel|d'internat)",
      "hors sujet (catastrophe naturelle, convention collective, concours)", -6.0),
    W(r"delegation de (?:signature|competences)", "délégation de signature", -3.0),
    W(r"amf|acpr|ofac|fatf|gafi|amla|esma|eba|fincen|tracfin|fcpa|ecb|bce|esrb|oicv|iosco|cssf|"
      r"blanchiment|money laundering|anti-money|lcb-?ft|aml|cft|crypto-?actifs?|crypto[- ]?assets?|"
      r"sanctions? (?:package|list|regimes?|designations?|regulations?)|designations? removals?|"
      r"marches financiers|financial (?:markets|services|sanctions|fraud)|banking|bancaires?|"
      r"epargnants?|placements?|investissements? financiers|gel des avoirs|abus de marche|"
      r"manipulation de marche|prestataires de services d'investissement",
      FINANCE, -4.0),
)
TECH_PRESS = ("techcrunch.com", "theverge.com", "numerama.com", "01net.com", "frandroid.com", "arstechnica.com",
              "clubic.com", "journaldugeek.com", "presse-citron.net", "lesnumeriques.com", "bfmtv.com",
              "zdnet.fr", "zdnet.com", "wired.com", "venturebeat.com", "silicon.fr", "lemondeinformatique.fr")

# -- sources and authorities ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceProfile:
    """What the rules know of a source, from its keys in ``sources.toml``: the theme its items lean to
    (``default_theme``: a prior, and why its untagged items stay in scope) and whether its items have a legal angle
    (``legal = true``: authorities, official journals, law firms). ``label`` is quoted in reasons."""

    label: str = ""
    default_theme: str = ""
    legal: bool = False


# An item whose source has no profile (or no default theme) still gets the prior of the site it comes from.
DOMAIN_PRIORS: dict[str, tuple[str, str]] = {
    "cnil.fr": (PD, "site: cnil.fr"),
    "edpb.europa.eu": (PD, "site: edpb.europa.eu"),
    "edps.europa.eu": (PD, "site: edps.europa.eu"),
    "ansm.sante.fr": (HP, "site: ansm.sante.fr"),
    "health-data-hub.fr": (HD, "site: health-data-hub.fr"),
}
AUTHORITY_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"commission nationale de l'informatique et des libertes|\bcnil\b"), PD, "autorité : CNIL"),
    (re.compile(r"agence nationale de securite du medicament|\bansm\b"), HP, "autorité : ANSM"),
    (re.compile(r"comite economique des produits de sante"), HP, "autorité : CEPS"),
    (re.compile(r"agence du numerique en sante|plateforme des donnees de sante"), HD, "autorité : e-santé"),
)
NATURE_DELIB: dict[str, tuple[str, str]] = {
    "autorisation de recherche": (HD, "délibération CNIL : autorisation de recherche"),
    "sanction": (PD, "délibération CNIL : sanction"),
    "mise en demeure": (PD, "délibération CNIL : mise en demeure"),
    "recommandation": (PD, "délibération CNIL : recommandation"),
    "avis": (PD, "délibération CNIL : avis"),
    "autorisation": (PD, "délibération CNIL : autorisation"),
}
SCOPE_AUTHORITIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ministere (?:de la |des solidarites et de la |du travail, de la )?sante|ministere des solidarites"),
     "authority: ministère de la santé"),
    (re.compile(r"commission nationale de l'informatique|\bcnil\b"), "authority: CNIL"),
    (re.compile(r"securite du medicament|\bansm\b"), "authority: ANSM"),
    (re.compile(r"haute autorite de sante|\bhas\b"), "authority: HAS"),
    (re.compile(r"agence du numerique en sante|plateforme des donnees de sante"), "authority: e-santé"),
)
SCOPE_DOMAINS = ("cnil.fr", "ansm.sante.fr", "sante.gouv.fr", "esante.gouv.fr", "has-sante.fr",
                 "health-data-hub.fr", "edpb.europa.eu", "edps.europa.eu")


@dataclass
class Findings:
    """The evidence found for one item, per theme, and the resulting logits."""

    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def add(self, ev: Evidence) -> None:
        items = self.evidence.setdefault(ev.theme, [])
        if all(e.label != ev.label for e in items):
            items.append(ev)

    def of(self, theme: str) -> list[Evidence]:
        return self.evidence.get(theme, [])

    def logit(self, theme: str) -> float:
        evidence = self.of(theme)
        prior = sum(e.weight for e in evidence if e.kind in ("source", "authority"))
        positive = sum(e.weight for e in evidence if e.weight > 0 and e.kind not in ("source", "authority"))
        negative = sum(e.weight for e in evidence if e.weight < 0)
        return BIAS + min(prior, SOURCE_PRIOR + 1) + min(positive, CAP) + negative

    def certain(self, theme: str) -> bool:
        """A legal identifier (an act's number, a code article) names the theme: the rules decide it alone."""
        return any(e.kind == "identifier" for e in self.of(theme))

    def positives(self, theme: str) -> float:
        return sum(e.weight for e in self.of(theme) if e.weight > 0 and e.kind != "negative")


@dataclass(frozen=True)
class Text:
    title: str
    summary: str
    raw_title: str
    raw_summary: str

    @classmethod
    def of(cls, item: Item) -> Text:
        title, summary = _plain(item.title), _plain(item.summary)
        return cls(fold(title), fold(summary), title, summary)

    @property
    def folded(self) -> str:
        return f"{self.title} \n {self.summary}"

    @property
    def raw(self) -> str:
        return f"{self.raw_title} \n {self.raw_summary}"


HEALTH_DATA_PHRASE = re.compile(r"(?:donnees|informations?|data)\W+(?:\w+\W+){0,4}?(?:sante|medica\w*|health|"
                                r"patients?)|(?:sante|medica\w*|health|patients?)\W+(?:\w+\W+){0,2}?(?:donnees|data)|"
                                r"suivi des patients|patient follow-up|dossiers? (?:medica\w*|des patients)")


def _health_context(text: Text) -> bool:
    """Health in a data-protection item: a health word in the title, or health data named in the summary (a
    passing mention such as "suivre notre santé" among other uses of an app is not enough)."""
    title = text.title.replace("haute autorite de sante", "")
    if HEALTH_CONTEXT.search(title, text.raw_title):
        return True
    return bool(HEALTH_DATA_PHRASE.search(text.summary.replace("haute autorite de sante", "")))


def _plain(text: str) -> str:
    return " ".join(text.replace("’", "'").replace("\u00a0", " ").replace("\u202f", " ").split())


def domain(url: str) -> str:
    host = urlparse(url).netloc.lower()
    return host[4:] if host.startswith("www.") else host


class Rules:
    """All the rules, applied to one item at a time. ``profiles`` maps source names to what ``sources.toml`` says
    of them (see :class:`SourceProfile`); a source without one is judged by its site alone."""

    def __init__(self, theme_ids: Sequence[str], profiles: Mapping[str, SourceProfile] | None = None):
        self.theme_ids = tuple(theme_ids)
        self.profiles: Mapping[str, SourceProfile] = dict(profiles or {})

    def profile(self, item: Item) -> SourceProfile:
        return self.profiles.get(item.source) or SourceProfile()

    def scope(self, item: Item) -> str | None:
        """Why ``item`` is in scope whatever its themes (see :func:`scope_reason`)."""
        return scope_reason(item, self.profile(item))

    def findings(self, item: Item) -> Findings:
        text = Text.of(item)
        found = Findings()
        self._keywords(text, found)
        self._identifiers(item, text, found)
        self._source(item, found)
        self._combinations(item, text, found)
        self._negatives(item, text, found)
        return Findings({t: e for t, e in found.evidence.items() if t in self.theme_ids})

    def _keywords(self, text: Text, found: Findings) -> None:
        for theme, patterns in KEYWORDS.items():
            for p in patterns:
                if p.search(text.title, text.raw_title):
                    found.add(Evidence(theme, p.label, p.weight))
                elif p.search(text.summary, text.raw_summary):
                    found.add(Evidence(theme, p.label, p.weight * SUMMARY_FACTOR))

    def _identifiers(self, item: Item, text: Text, found: Findings) -> None:
        for theme, label in identifier_themes(item, text):
            found.add(Evidence(theme, "identifier: " + label, STRONG + 1, "identifier"))
        for regex, theme, label in CODE_ARTICLES:
            if regex.search(text.folded):
                found.add(Evidence(theme, "article: " + label, STRONG, "identifier"))

    def _source(self, item: Item, found: Findings) -> None:
        profile = self.profile(item)
        own = (profile.default_theme, f"source: {profile.label or item.source}") if profile.default_theme else None
        prior = own or DOMAIN_PRIORS.get(domain(item.url))
        if prior:
            found.add(Evidence(prior[0], prior[1], SOURCE_PRIOR, "source"))
        meta = fold(" ".join((item.authority, item.rubric)))
        for regex, theme, label in AUTHORITY_RULES:
            if meta.strip() and regex.search(meta):
                found.add(Evidence(theme, label, SOURCE_PRIOR, "authority"))
        delib = fold(str(item.extra.get("nature_delib", "")))
        for key, (theme, label) in NATURE_DELIB.items():
            if delib.startswith(key):
                found.add(Evidence(theme, label, STRONG, "authority"))
                break

    def _combinations(self, item: Item, text: Text, found: Findings) -> None:
        folded = text.folded
        data_protection = found.positives(PD) >= MEDIUM
        if data_protection and _health_context(text):
            found.add(Evidence(HD, "santé dans un contexte de protection des données", MEDIUM, "combination"))
        if found.positives(HD) >= STRONG and DATA_CONTEXT.search(folded, text.raw) and _about_rules(folded):
            found.add(Evidence(PD, "traitement de données de santé", MEDIUM, "combination"))
        self._dmuu(folded, text, found)
        if found.logit(DMUU) > 0:
            found.add(Evidence(HP, "retraitement de dispositifs médicaux", STRONG, "combination"))

    def _dmuu(self, folded: str, text: Text, found: Findings) -> None:
        if REPROCESSING.search(folded, text.raw) and DEVICE_CONTEXT.search(folded, text.raw):
            found.add(Evidence(DMUU, "retraitement de dispositifs médicaux à usage unique", STRONG, "combination"))
        if MDR_ARTICLE_17.search(folded):
            found.add(Evidence(DMUU, "article 17 du règlement (UE) 2017/745 (MDR)", STRONG + 1, "identifier"))
        if DMUU_ORDER.search(folded):
            found.add(Evidence(DMUU, "arrêté du 4 février 2026 (expérimentation DMUU)", STRONG + 1, "identifier"))

    def _negatives(self, item: Item, text: Text, found: Findings) -> None:
        negatives = [p for p in OFF_TOPIC if p.search(text.folded, text.raw)]
        legal = LEGAL_ANGLE.search(text.folded, text.raw)
        if domain(item.url) in TECH_PRESS and not legal:
            negatives.append(W("", "presse tech sans angle juridique", -3.0))
        for theme in self.theme_ids:
            for p in negatives:
                if not (p.label == FINANCE and theme in (AI, PD) and _title_strong(found.of(theme))):
                    found.add(Evidence(theme, p.label, p.weight, "negative"))
        if found.positives(PD) >= STRONG and 0 < found.positives(HP) < STRONG:
            found.add(Evidence(HP, "sujet de protection des données", -1.5, "negative"))
        if found.positives(AI) and not legal and not self.profile(item).legal:
            found.add(Evidence(AI, "IA sans angle juridique ou réglementaire", -2.5, "negative"))


def _title_strong(evidence: Sequence[Evidence]) -> bool:
    """A keyword of full strong weight: found in the title (summary matches count less)."""
    return any(e.kind == "keyword" and e.weight >= STRONG for e in evidence)


def _about_rules(folded: str) -> bool:
    return bool(re.search(r"traitement|hebergement|partage|acces|reutilisation|protection|securite|pseudonym|"
                          r"anonym|conformite|autorisation|cnil|rgpd|gdpr|sanction|souverainete|consent", folded))


def identifier_themes(item: Item, text: Text) -> list[tuple[str, str]]:
    """(theme, label) for each known legal act the item is or cites."""
    numbers = set(_BARE_EU.findall(text.folded))
    numbers |= {f"{y}/{int(n)}" for y, n in _CELEX.findall(text.raw)}
    cited = _cited_acts(item, text)
    out = [EU_ACTS[n] for n in sorted(numbers) if n in EU_ACTS]
    out += [EU_ACTS[n] for n in sorted(cited["eu"]) if n in EU_ACTS and n not in numbers]
    out += [FR_ACTS[n] for n in sorted(cited["fr"]) if n in FR_ACTS]
    return out


def _cited_acts(item: Item, text: Text) -> dict[str, set[str]]:
    cited: dict[str, set[str]] = {"eu": set(), "fr": set()}
    values: dict[str, list[str]] = by_scheme(text.raw)
    for scheme, value in item.identifiers.items():
        values.setdefault(scheme.split(":")[-1], []).extend(str(value).split(","))
    for scheme, found in values.items():
        kind = "eu" if scheme in ("eu_regulation", "eu_directive") else "fr" if scheme in ("decret", "loi") else ""
        if kind:
            cited[kind].update(v.strip() for v in found)
        if scheme == "celex":
            cited["eu"].update(f"{m[0]}/{int(m[1])}" for v in found for m in _CELEX.findall(v))
    return cited


def scope_reason(item: Item, profile: SourceProfile | None = None) -> str | None:
    """Why an item is in scope whatever its themes: a source with a default theme (CNIL, ANSM...), the health
    ministry, the CNIL, the ANSM or the HAS as issuing authority, or one of their sites."""
    if profile is not None and profile.default_theme:
        return f"source: {profile.label or item.source}"
    meta = fold(" ".join((item.authority, item.rubric)))
    for regex, reason in SCOPE_AUTHORITIES:
        if meta.strip() and regex.search(meta):
            return reason
    host = domain(item.url)
    for scope_domain in SCOPE_DOMAINS:
        if host == scope_domain or host.endswith("." + scope_domain):
            return f"site: {scope_domain}"
    return None


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reason_text(evidence: Sequence[Evidence], extra: str = "") -> str:
    """'matched: a, b; identifier: ...; source: CNIL; not: ...' from the evidence of one theme."""
    parts: dict[str, list[str]] = {}
    for e in sorted(evidence, key=lambda e: -abs(e.weight)):
        key = {"keyword": "matched", "combination": "matched", "negative": "but"}.get(e.kind, "")
        parts.setdefault(key, []).append(e.label)
    chunks = [f"{k}: {', '.join(v[:4])}" if k else "; ".join(v[:3]) for k, v in parts.items()]
    if extra:
        chunks.append(extra)
    return "; ".join(chunks)


def logits(rules: Rules, items: Sequence[Item]) -> list[dict[str, float]]:
    """The rule logit of every theme, for each item."""
    out: list[dict[str, float]] = []
    for item in items:
        found = rules.findings(item)
        out.append({t: found.logit(t) for t in rules.theme_ids})
    return out
