"""What ``check`` and ``setup`` say of the credential: its kind, its expiry, and for a scoped
token or an OAuth client, the scopes each feature needs that it lacks.

Jira never names the scope a call lacked, so the scopes are found by ``connector.scopes.PROBES``:
calls that change nothing, each refused (401) only for want of its scopes.
"""

from __future__ import annotations

from connector.client import JiraConnector
from connector.credentials import GATEWAY_KINDS
from connector.errors import JiraAuthError, JiraError
from connector.scopes import FEATURES, PROBES, Probe, missing_by_feature, needed
from jira_setup.findings import Finding
from service.settings import Settings

SCOPES_FIX = (
    "give the service account's {what} these scopes (admin.atlassian.com > Directory > Service "
    "accounts > the account > Credentials: a token's scopes are set when it is created, so "
    "create a new one), then put it in place"
)
WEBHOOK_NOTE = (
    "a scoped token or OAuth client cannot read or register the admin webhook: Atlassian's API "
    "gateway does not offer the admin webhook API, and no scope reaches it. Register it in Jira "
    "(Settings > System > WebHooks) as a Jira administrator, or run jira-impact webhook "
    "register once with JIRA_AUTH=basic and a Jira administrator's classic API token"
)


def probe_scopes(jira: JiraConnector) -> dict[Probe, bool] | JiraError:
    """Each probe sent, and whether Jira answered it otherwise than 401; the error when Jira
    could not tell (no answer, a failure on its side)."""
    answered: dict[Probe, bool] = {}
    for probe in PROBES:
        try:
            jira.request(probe.method, probe.path, body=probe.body)
        except JiraAuthError:
            answered[probe] = False
        except JiraError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                return exc
            answered[probe] = True  # 400, 403, 404: the call passed the gateway's scopes
        else:
            answered[probe] = True
    return answered


def scope_findings(settings: Settings, jira: JiraConnector) -> list[Finding]:
    """One finding per feature (triage, ranking, setup): its scopes held, or those missing;
    none for a credential that has no scopes (basic, pat)."""
    if settings.jira_auth not in GATEWAY_KINDS:
        return []
    found = probe_scopes(jira)
    if isinstance(found, JiraError):
        return [Finding(False, "scopes", f"could not check: {found}", "run the check again")]
    what = "OAuth client" if settings.jira_auth == "oauth" else "scoped API token"
    missing = missing_by_feature(found)
    findings = []
    for feature in FEATURES:
        lacking = missing[feature]
        if not lacking:
            held = ", ".join(needed(feature))
            findings.append(Finding(True, f"scopes for {feature}", f"held: {held}"))
            continue
        findings.append(
            Finding(
                False,
                f"scopes for {feature}",
                f"the {what} lacks {', '.join(lacking)} (found by calls that change nothing; "
                "Jira refuses such calls with 'scope does not match' without naming the scope)",
                SCOPES_FIX.format(what=what),
            )
        )
    return findings


def expiry_finding(settings: Settings) -> Finding | None:
    """A failed finding from 14 days before ``JIRA_TOKEN_EXPIRES``; None before that."""
    warning = settings.expiry_warning()
    if warning is None:
        return None
    return Finding(
        False,
        "credential",
        warning,
        "create the new credential before the date; a token kept in a file "
        "(JIRA_API_TOKEN_FILE, …) is read again when Jira refuses the old one, with no restart",
    )


def credential_findings(settings: Settings, jira: JiraConnector) -> list[Finding]:
    """The expiry warning, then the scopes by feature."""
    found = []
    expiry = expiry_finding(settings)
    if expiry is not None:
        found.append(expiry)
    return found + scope_findings(settings, jira)
