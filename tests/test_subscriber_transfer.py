"""`newsletter subscribers import` / `export`: a report of every bad row, idempotent re-import, round trip."""

import json
import shutil

from sqlmodel import Session, col, select

from newsletter import db
from newsletter.models import Subscriber, SubscriberStatus
from subscribers.consent import unsubscribe
from tests.helpers import add_active

MIXED_CSV = (
    "email,name,interests,keywords,timezone,send_hour\n"           # line 1
    "ada@example.org,Ada,long-context LLMs,\"KV cache, MoE\",Europe/Paris,6\n"  # 2 good
    "not-an-address,Bob,,,UTC,7\n"                                 # 3 invalid address
    "\"eve@example.org\",\"Eve\",\"first line\r\nBcc: x@evil.test\",,UTC,7\n"  # 4-5 CR/LF in a field
    "grace@example.org,Grace,robots,,America/New_York,8\n"         # 6 good
    " ada@EXAMPLE.org,Ada again,,,UTC,7\n"                         # 7 duplicate of line 2 (same address)
    "heidi@example.org,Heidi,\n"                                   # 8 missing columns
    "ivan@example.org,Ivan,,,Mars/Olympus_Mons,7\n"                # 9 bad time zone
    "\n"                                                           # 10 blank: ignored
    "judy@example.org,,,,,\n"                                      # 11 good (defaults)
)




def emails(session) -> list[str]:
    session.expire_all()
    return [s.email for s in session.exec(select(Subscriber).order_by(col(Subscriber.email)))]


def test_mixed_file_reports_each_bad_row_and_imports_the_good_ones(session, tmp_path, cli):
    path = tmp_path / "people.csv"
    path.write_bytes(MIXED_CSV.encode())
    result = cli("subscribers", "import", path, "--json")
    assert result.exit_code == 1  # some rows were rejected; the valid ones are imported all the same
    report = json.loads(result.stdout)
    reasons = {row["line"]: row["reason"] for row in report["rejected"]}
    assert sorted(reasons) == [3, 4, 7, 8, 9]
    assert "invalid email address" in reasons[3]
    assert "control characters" in reasons[4] and "\\r" in reasons[4]
    assert reasons[7] == "duplicate of line 2"
    assert "missing column(s) keywords, timezone, send_hour" == reasons[8]
    assert "unknown time zone 'Mars/Olympus_Mons'" in reasons[9]
    assert report["imported"] == {"pending": 3} and report["rows"] == 8
    assert "5 of 8 rows rejected" in result.output and "Traceback" not in result.output
    assert emails(session) == ["ada@example.org", "grace@example.org", "judy@example.org"]
    ada = session.exec(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
    assert (ada.status, ada.consent, ada.keywords, ada.timezone, ada.send_hour) == \
           ("pending", "", ["KV cache", "MoE"], "Europe/Paris", 6)

    again = json.loads(cli("subscribers", "import", path, "--json").stdout)  # idempotent
    assert again["imported"] == {} and sorted(again["already_present"]) == emails(session)
    assert len(again["rejected"]) == 5 and len(emails(session)) == 3


def test_the_table_report_names_line_and_reason(session, tmp_path, cli):
    path = tmp_path / "people.csv"
    path.write_bytes(MIXED_CSV.encode())
    output = cli("subscribers", "import", path, "--dry-run").output
    assert "rejected rows" in output and "duplicate of line 2" in output and "would import 3 pending" in output
    assert emails(session) == []  # a dry run stores nothing


def test_confirmed_records_operator_asserted_consent_and_keeps_suppressions(session, tmp_path, cli):
    path = tmp_path / "people.jsonl"
    rows = [{"email": "ada@example.org", "keywords": ["KV cache"]},
            {"email": "gone@example.org", "status": "unsubscribed"},
            {"email": "waiting@example.org", "status": "pending"},
            "not json",
            {"email": "num@example.org", "send_hour": "seven"}]
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    result = cli("subscribers", "import", path, "--confirmed", "--json")
    report = json.loads(result.stdout)
    assert report["imported"] == {"active": 1, "unsubscribed": 1, "pending": 1}
    assert [(r["line"], r["reason"].split(" (")[0]) for r in report["rejected"]] == \
           [(4, "not valid JSON"), (5, "send_hour must be a whole number, not 'seven'")]
    by_email = {s.email: s for s in session.exec(select(Subscriber))}
    assert by_email["ada@example.org"].status == "active"
    assert by_email["ada@example.org"].consent == "operator-asserted" and by_email["ada@example.org"].confirmed_at
    assert by_email["gone@example.org"].status == "unsubscribed" and by_email["gone@example.org"].unsubscribed_at
    assert by_email["waiting@example.org"].status == "pending"


def test_a_file_that_cannot_be_read_is_one_line_and_imports_nothing(session, tmp_path, cli):
    cases = {"no_email.csv": b"name,timezone\nAda,UTC\n", "typo.csv": b"email,keyword\na@example.org,x\n",
             "latin1.csv": "email,name\nzoe@example.org,Zo\xe9\n".encode("latin-1")}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = cli("subscribers", "import", tmp_path / name)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "no 'email' column" in cli("subscribers", "import", tmp_path / "no_email.csv").output
    assert "unknown column(s) keyword" in cli("subscribers", "import", tmp_path / "typo.csv").output
    assert "not UTF-8" in cli("subscribers", "import", tmp_path / "latin1.csv").output
    assert "no such file" in cli("subscribers", "import", tmp_path / "missing.csv").output
    assert emails(session) == []


def test_export_then_import_recreates_every_subscriber(session, settings, tmp_path, migrated_template, cli):
    ada = add_active(session, "ada@example.org", "long-context LLMs, \"quoted\"", "KV cache, MoE",
               followed_authors="Tri Dao", excluded_keywords="survey", timezone="Asia/Tokyo", send_hour=21,
               frequency="weekly", name="Ada Lovelace")
    cli("subscribers", "add", "pending@example.org", "--pending", "--interests", "robots; 日本語")
    gone = add_active(session, "gone@example.org")
    unsubscribe(session, gone)
    gone.paused = True
    ada.consent = "double-opt-in"  # kept as given; --confirmed only fills in a missing consent record
    session.commit()
    for format in ("csv", "json"):
        exported = tmp_path / f"export.{format}"
        assert cli("subscribers", "export", "--format", format, "--out", exported).exit_code == 0
        fresh = tmp_path / f"fresh-{format}.db"
        shutil.copy(migrated_template, fresh)
        url = f"sqlite:///{fresh}"
        with db.session_scope(url) as other:
            from subscribers.transfer import import_subscribers

            report = import_subscribers(other, exported, confirmed=True)
        assert report.rejected == [] and report.imported_total == 3
        with Session(db.get_engine(url)) as other:
            from subscribers.transfer import export_rows

            assert export_rows(other) == export_rows(session)


def test_export_to_stdout_is_importable_csv(session, tmp_path, cli):
    add_active(session, "ada@example.org", keywords="KV cache")
    output = cli("subscribers", "export").stdout
    assert output.splitlines()[0].startswith("email,name,status,")
    assert "ada@example.org,,active," in output
    assert cli("subscribers", "export", "--format", "xml").exit_code == 1


def test_update_sets_the_profiles_of_present_addresses_and_never_their_consent(session, tmp_path, cli):
    ada = add_active(session, "ada@example.org", "diffusion models", "DDPM")
    pending = Subscriber(email="waiting@example.org", status=SubscriberStatus.pending, interests="robots")
    gone = Subscriber(email="gone@example.org", status=SubscriberStatus.active, interests="old")
    session.add_all([pending, gone])
    session.commit()
    unsubscribe(session, gone)
    session.commit()
    path = tmp_path / "profiles.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [
        {"email": "ada@example.org", "interests": "mixture of experts", "keywords": "MoE, routing", "send_hour": 9},
        {"email": "waiting@example.org", "status": "active", "interests": "robots"},  # same profile, no consent
        {"email": "gone@example.org", "status": "active", "timezone": "Asia/Tokyo"},
        {"email": "new@example.org", "interests": "speech"}]) + "\n")

    plain = json.loads(cli("subscribers", "import", path, "--confirmed", "--json").stdout)
    assert plain["updated"] == [] and len(plain["already_present"]) == 3
    session.expire_all()
    assert session.get(Subscriber, ada.id).interests == "diffusion models"  # without --update: left alone

    dry = cli("subscribers", "import", path, "--confirmed", "--update", "--dry-run")
    assert "2 profiles to update" in dry.output
    session.expire_all()
    assert session.get(Subscriber, ada.id).interests == "diffusion models"

    report = json.loads(cli("subscribers", "import", path, "--confirmed", "--update", "--json").stdout)
    assert sorted(report["updated"]) == ["ada@example.org", "gone@example.org"]
    session.expire_all()
    by_email = {s.email: s for s in session.exec(select(Subscriber))}
    updated = by_email["ada@example.org"]
    assert (updated.interests, updated.keywords, updated.send_hour, updated.status) == (
        "mixture of experts", ["MoE", "routing"], 9, "active")
    assert by_email["waiting@example.org"].status == "pending"  # a file never confirms anyone
    assert (by_email["gone@example.org"].status, by_email["gone@example.org"].timezone) == ("unsubscribed",
                                                                                        "Asia/Tokyo")
