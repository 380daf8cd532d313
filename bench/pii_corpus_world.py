"""Two more labelled PII corpora for bench/pii.sh, generated with Faker (fixed seeds).

usage: pii_corpus_world.py OUT_PREFIX LINES
Writes OUT_PREFIX-world.{txt,labels.jsonl} and OUT_PREFIX-dense.{txt,labels.jsonl}, labelled
as pii_corpus.py labels (spans [entity, start, end] in UTF-8 bytes, and a hard-negative flag).

- world: ten locales (en_GB, de_DE, fr_FR, es_ES, it_IT, nl_NL, en_CA, en_AU, en_IN, ja_JP),
  sentences in each locale's language around Faker's names, phone numbers, addresses (their
  line breaks written as ", "), emails, IBANs and the national identifiers Faker makes
  (NINO, NIR, DNI/NIE, codice fiscale, BSN, SIN, Aadhaar); one line in five a hard negative
  (order and invoice numbers, ISBNs, postcodes and dates on their own, product codes,
  amounts, versions).
- dense: en_US, one finding every ~60 bytes: several entities per line, no filler.

Faker's values are labelled as Faker writes them, valid or not: its UK NINO prefix, for one,
is often never issued (ZZ), and its phone numbers often fit no number plan. Such values are
still what a person reading the line would call a NINO or a phone number; the score says how
many the detector finds. Nothing here is used to build or tune the detector: its names come
from other lists, and this corpus only measures.
"""
import json
import random
import sys

from faker import Faker

out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(2026)

LOCALES = ["en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_CA", "en_AU", "en_IN",
           "ja_JP"]

# Templates per language: {} is the value.
T = {
    "en": {
        "PERSON": ["My name is {}.", "{} approved the request.", "Dear {},", "ask {} about it",
                   "the patient, {}, was seen today", "signed by {}"],
        "PHONE": ["Call me on {}.", "Phone: {}", "ring the office on {}", "mobile {}"],
        "ADDRESS": ["Ship to {} please.", "She lives at {}.", "Address: {}"],
        "EMAIL": ["Email {} for details.", "contact: {}"],
        "IBAN": ["Pay into IBAN {}.", "account {}"],
        "ID": ["ID number {} on file", "their number is {}"],
    },
    "de": {
        "PERSON": ["Mein Name ist {}.", "{} hat den Antrag genehmigt.", "Sehr geehrte(r) {},",
                   "fragen Sie {} danach", "unterschrieben von {}"],
        "PHONE": ["Rufen Sie mich unter {} an.", "Telefon: {}", "Tel. {}"],
        "ADDRESS": ["Bitte an {} liefern.", "Sie wohnt in {}.", "Anschrift: {}"],
        "EMAIL": ["E-Mail an {} senden.", "Kontakt: {}"],
        "IBAN": ["Bitte auf IBAN {} überweisen.", "Konto {}"],
        "ID": ["Ausweisnummer {}", "Nummer {} hinterlegt"],
    },
    "fr": {
        "PERSON": ["Je m'appelle {}.", "{} a approuvé la demande.", "Cher {},",
                   "demandez à {}", "signé par {}"],
        "PHONE": ["Appelez-moi au {}.", "Téléphone : {}", "tél. {}"],
        "ADDRESS": ["Livrer au {} svp.", "Elle habite {}.", "Adresse : {}"],
        "EMAIL": ["Écrivez à {} pour en savoir plus.", "contact : {}"],
        "IBAN": ["Virement sur l'IBAN {}.", "compte {}"],
        "ID": ["numéro de sécurité sociale {}", "NIR {}"],
    },
    "es": {
        "PERSON": ["Me llamo {}.", "{} aprobó la solicitud.", "Estimado/a {}:",
                   "pregunte a {}", "firmado por {}"],
        "PHONE": ["Llámeme al {}.", "Teléfono: {}", "tel. {}"],
        "ADDRESS": ["Enviar a {} por favor.", "Vive en {}.", "Dirección: {}"],
        "EMAIL": ["Escriba a {} para más información.", "contacto: {}"],
        "IBAN": ["Transferir al IBAN {}.", "cuenta {}"],
        "ID": ["DNI {}", "con documento {}"],
    },
    "it": {
        "PERSON": ["Mi chiamo {}.", "{} ha approvato la richiesta.", "Gentile {},",
                   "chieda a {}", "firmato da {}"],
        "PHONE": ["Mi chiami al {}.", "Telefono: {}", "tel. {}"],
        "ADDRESS": ["Spedire a {} per favore.", "Abita in {}.", "Indirizzo: {}"],
        "EMAIL": ["Scriva a {} per i dettagli.", "contatto: {}"],
        "IBAN": ["Bonifico sull'IBAN {}.", "conto {}"],
        "ID": ["codice fiscale {}", "CF {}"],
    },
    "nl": {
        "PERSON": ["Mijn naam is {}.", "{} heeft de aanvraag goedgekeurd.", "Beste {},",
                   "vraag het aan {}", "ondertekend door {}"],
        "PHONE": ["Bel me op {}.", "Telefoon: {}", "tel. {}"],
        "ADDRESS": ["Graag leveren op {}.", "Zij woont op {}.", "Adres: {}"],
        "EMAIL": ["Mail {} voor details.", "contact: {}"],
        "IBAN": ["Overmaken naar IBAN {}.", "rekening {}"],
        "ID": ["BSN {}", "burgerservicenummer {}"],
    },
    "ja": {
        "PERSON": ["私の名前は{}です。", "{}さんが承認しました。", "{}様", "担当：{}"],
        "PHONE": ["電話番号は{}です。", "TEL: {}", "携帯 {}"],
        "ADDRESS": ["住所：{}", "{}に住んでいます。", "お届け先 {}"],
        "EMAIL": ["メール {} まで", "連絡先：{}"],
        "IBAN": ["口座 {}"],
        "ID": ["番号 {}"],
    },
}
ID_ENTITY = {"en_GB": "UK_NINO", "fr_FR": "FR_NIR", "es_ES": "ES_NIF", "it_IT": "IT_FISCAL_CODE",
             "nl_NL": "NL_BSN", "en_CA": "CA_SIN", "en_IN": "IN_AADHAAR"}
ID_TEMPLATES = {"UK_NINO": ["National Insurance number {}", "NI number: {}"],
                "CA_SIN": ["SIN {}", "social insurance number {}"],
                "IN_AADHAAR": ["Aadhaar {}", "Aadhaar number: {}"]}


def gen(fake, loc, ent):
    if ent == "PERSON":
        return fake.name()
    if ent == "PHONE":
        return fake.phone_number()
    if ent == "ADDRESS":
        return fake.address().replace("\n", ", ")
    if ent == "EMAIL":
        return fake.email()
    if ent == "IBAN":
        return fake.iban()
    if ent == "ES_NIE":
        return fake.nie()
    if ent == "ES_NIF":
        return fake.nif()
    if ent == "IN_AADHAAR":
        v = fake.aadhaar_id()
        return " ".join(v[i:i + 4] for i in range(0, 12, 4)) if rng.random() < 0.5 else v
    return fake.ssn()


def negatives(fake):
    d = fake.date_object()
    return [
        f"Bestellung {rng.randint(10**7, 10**8 - 1)} versandt",
        f"facture n° {rng.randint(10**5, 10**6 - 1)}-{rng.randint(10, 99)}",
        f"pedido {rng.randint(10**9, 10**10 - 1)} confirmado",
        f"ordine {rng.choice('ABCDEFGH')}{rng.randint(10**6, 10**7 - 1)} spedito",
        f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
        f"postcode {fake.postcode()} only",
        f"on {d.strftime('%d.%m.%Y')} at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        f"SKU {rng.choice(['AB', 'XK', 'QZ'])}-{rng.randint(10000, 99999)}-{rng.choice('LMS')}",
        f"part {''.join(rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ') for _ in range(5))}{rng.randint(1000, 9999)}",
        f"total {rng.randint(100, 99999)},{rng.randint(0, 99):02d} EUR",
        f"version {rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        f"ticket #{rng.randint(10**5, 10**7)} closed",
        f"room {rng.randint(100, 999)}, floor {rng.randint(1, 30)}",
    ]


def write(path, lines):
    with open(path + ".txt", "w", encoding="utf-8") as text, \
            open(path + ".labels.jsonl", "w") as labels:
        for line, spans, negative in lines:
            assert "\n" not in line
            text.write(line + "\n")
            labels.write(json.dumps({"spans": spans, "negative": negative}) + "\n")


def compose(parts):
    """Joins (template, value, entity) parts with spaces; spans in UTF-8 bytes."""
    line, spans = "", []
    for t, value, ent in parts:
        prefix = line + (" " if line else "")
        before = t[:t.index("{}")]
        start = len((prefix + before).encode())
        spans.append([ent, start, start + len(value.encode())])
        line = prefix + t.replace("{}", value, 1)
    return line, spans


fakers = {loc: Faker(loc) for loc in LOCALES}
for i, loc in enumerate(LOCALES):
    fakers[loc].seed_instance(100 + i)
world = []
for _ in range(n):
    loc = rng.choice(LOCALES)
    fake = fakers[loc]
    lang = loc[:2]
    if rng.random() < 0.2:
        world.append((rng.choice(negatives(fake)), [], True))
        continue
    parts = []
    for _ in range(2 if rng.random() < 0.3 else 1):
        ent = rng.choice(["PERSON", "PERSON", "PHONE", "PHONE", "ADDRESS", "EMAIL", "IBAN", "ID"])
        if ent == "ID":
            if loc not in ID_ENTITY:
                ent = "PERSON"
            else:
                label = ID_ENTITY[loc]
                if loc == "es_ES" and rng.random() < 0.4:
                    label = "ES_NIE"
                templates = ID_TEMPLATES.get(label, T[lang]["ID"])
                parts.append((rng.choice(templates), gen(fake, loc, label), label))
                continue
        parts.append((rng.choice(T[lang][ent]), gen(fake, loc, ent), ent))
    line, spans = compose(parts)
    world.append((line, spans, False))
write(out + "-world", world)

# Dense: several entities a line, short templates, no filler (about one finding per 60 bytes).
us = Faker("en_US")
us.seed_instance(7)
DENSE = {
    "PERSON": ["{} called", "from {}", "{} wrote"],
    "EMAIL": ["at {}", "mail {}"],
    "PHONE": ["on {}", "tel {}"],
    "US_SSN": ["SSN {}"],
    "CREDIT_CARD": ["card {}"],
    "IP_ADDRESS": ["ip {}"],
    "ADDRESS": ["at {}"],
}
dense = []
for _ in range(n):
    if rng.random() < 0.1:
        world_neg = negatives(us)
        dense.append((rng.choice(world_neg), [], True))
        continue
    parts = []
    for _ in range(rng.randint(2, 4)):
        ent = rng.choice(list(DENSE))
        value = {
            "PERSON": us.name, "EMAIL": us.email, "PHONE": us.phone_number, "US_SSN": us.ssn,
            "CREDIT_CARD": us.credit_card_number, "IP_ADDRESS": us.ipv4,
            "ADDRESS": lambda: us.street_address() + ", " + us.city() + ", " + us.state_abbr()
            + " " + us.zipcode(),
        }[ent]()
        parts.append((rng.choice(DENSE[ent]), value, ent))
    line, spans = compose(parts)
    dense.append((line, spans, False))
write(out + "-dense", dense)
