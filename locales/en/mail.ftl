# Expiry e-mails (one digest per person per sweep). English is the fallback for every message.
subject-one = API token "{ $name }" expires { $when }
subject-many = { $count } API tokens expire within 7 days; the first { $first }
greeting = Hello { $name },
intro-one = The API token "{ $name }" expires { $when }.
intro-many = { $count } API tokens that you issued or administer expire within 7 days, the first { $first }. Soonest first:
label-token = Token
label-role = Role
label-issuer = Issued by
label-expires = Expires at
label-open = Open the token
consequence-one = When it expires, every request that uses it is refused. To keep your scripts working:
consequence-many = When a token expires, every request that uses it is refused. To keep your scripts working:
step-create = Create a replacement token
step-rotate-one = Rotate it on its page: the same token gets a new secret and a new expiry date, and the old secret can keep working for a grace period while you switch
step-rotate-many = Rotate each token on its page (links above): the same token gets a new secret and a new expiry date, and the old secret can keep working for a grace period while you switch
step-update-one = Update the scripts and services that use "{ $name }" to send the new secret before the grace period ends.
step-update-many = Update the scripts and services that use each token to send its new secret before the grace period ends.
why-one = You get this e-mail because you issued this token or are an Administrator of its account.
why-many = You get this e-mail because you issued these tokens or are an Administrator of their account.
turn-off = Turn these e-mails off under Profile → Notifications
unsubscribe = Or stop them with one click
when-days = { $days ->
    [0] today
    [one] in { $days } day
   *[other] in { $days } days
}
# Leak alerts (one e-mail per alert, sent whatever the expiry-e-mail preference).
leak-subject = Security alert: API token "{ $name }" was found in public and revoked
leak-intro = The API token "{ $name }" was found where it shouldn't be, and we revoked it at once: every request that uses it is refused from now on.
label-found = Found at
leak-advice = Remove the token from where it was found, create a replacement, and update the scripts and services that used it.
leak-why = You get this alert because you issued this token or are an Administrator of its account. Security alerts can't be turned off.
leak-subject-kept = Security alert: API token "{ $name }" was found in public
leak-intro-kept = The API token "{ $name }" was found where it shouldn't be. Your account is set to only report leaked tokens, so it still works: anyone who found it can use it until it is deleted.
leak-advice-kept = Delete it now, remove it from where it was found, create a replacement, and update the scripts and services that used it.
# Deprovisioning alerts (SCIM): to the Administrators, one e-mail per token deleted with its issuer.
deprov-subject = API token "{ $name }" was deleted: its issuer was deprovisioned
deprov-intro = The identity provider deprovisioned the person who issued the API token "{ $name }", so the token was deleted with them: every request that uses it is refused from now on.
deprov-label = Why
deprov-advice = If a script or service still needs this access, give it a new token issued by someone who is still in the account.
deprov-why = You get this alert because you are an Administrator of the account. Security alerts can't be turned off.
