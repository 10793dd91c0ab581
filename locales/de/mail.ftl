subject-one = API-Token „{ $name }“ läuft { $when } ab
subject-many = { $count } API-Tokens laufen innerhalb von 7 Tagen ab, das erste { $first }
greeting = Hallo { $name },
intro-one = Das API-Token „{ $name }“ läuft { $when } ab.
intro-many = { $count } API-Tokens, die Sie ausgestellt haben oder verwalten, laufen innerhalb von 7 Tagen ab, das erste { $first }. Das nächste zuerst:
label-token = Token
label-role = Rolle
label-issuer = Ausgestellt von
label-expires = Läuft ab am
label-open = Token öffnen
consequence-one = Danach wird jede Anfrage mit diesem Token abgelehnt. Damit Ihre Skripte weiterlaufen:
consequence-many = Nach dem Ablauf wird jede Anfrage mit dem Token abgelehnt. Damit Ihre Skripte weiterlaufen:
step-create = Erstellen Sie ein neues Token als Ersatz
step-rotate-one = Rotieren Sie es auf seiner Seite: Dasselbe Token erhält ein neues Geheimnis und ein neues Ablaufdatum, und das alte Geheimnis kann während einer Übergangsfrist weiter funktionieren
step-rotate-many = Rotieren Sie jedes Token auf seiner Seite (Links oben): Dasselbe Token erhält ein neues Geheimnis und ein neues Ablaufdatum, und das alte Geheimnis kann während einer Übergangsfrist weiter funktionieren
step-update-one = Stellen Sie die Skripte und Dienste, die „{ $name }“ verwenden, vor Ende der Übergangsfrist auf das neue Geheimnis um.
step-update-many = Stellen Sie die Skripte und Dienste, die ein Token verwenden, vor Ende der Übergangsfrist auf sein neues Geheimnis um.
why-one = Sie erhalten diese E-Mail, weil Sie dieses Token ausgestellt haben oder Administrator des Kontos sind.
why-many = Sie erhalten diese E-Mail, weil Sie diese Tokens ausgestellt haben oder Administrator des Kontos sind.
turn-off = Diese E-Mails abschalten unter Profil → Benachrichtigungen
unsubscribe = Oder mit einem Klick abbestellen
when-days = { $days ->
    [0] heute
    [1] morgen
   *[other] in { $days } Tagen
}
leak-subject = Sicherheitswarnung: API-Token „{ $name }“ wurde öffentlich gefunden und widerrufen
leak-intro = Das API-Token „{ $name }“ wurde an einer Stelle gefunden, an die es nicht gehört, und sofort widerrufen: Jede Anfrage damit wird ab jetzt abgelehnt.
label-found = Gefunden in
leak-advice = Entfernen Sie das Token von dort, erstellen Sie ein neues und tragen Sie es in den Skripten und Diensten ein, die das alte benutzt haben.
leak-why = Sie erhalten diese Warnung, weil Sie dieses Token erstellt haben oder Administrator seines Kontos sind. Sicherheitswarnungen lassen sich nicht abschalten.
leak-subject-kept = Sicherheitswarnung: API-Token „{ $name }“ wurde öffentlich gefunden
leak-intro-kept = Das API-Token „{ $name }“ wurde an einer Stelle gefunden, an die es nicht gehört. Ihr Konto meldet gefundene Tokens nur, daher funktioniert es weiter: Wer es gefunden hat, kann es benutzen, bis es gelöscht ist.
leak-advice-kept = Löschen Sie es jetzt, entfernen Sie es von dort, erstellen Sie ein neues und tragen Sie es in den Skripten und Diensten ein, die das alte benutzt haben.
# Deprovisionierungswarnungen (SCIM): an die Administratoren, eine E-Mail je gelöschtem Token.
deprov-subject = API-Token „{ $name }“ wurde gelöscht: seine Ausstellerin oder sein Aussteller wurde deprovisioniert
deprov-intro = Der Identitätsanbieter hat die Person deprovisioniert, die das API-Token „{ $name }“ ausgestellt hat; das Token wurde mit ihr gelöscht. Jede Anfrage damit wird ab jetzt abgelehnt.
deprov-label = Grund
deprov-advice = Wenn ein Skript oder Dienst diesen Zugriff noch braucht, geben Sie ihm ein neues Token von jemandem, der noch zum Konto gehört.
deprov-why = Sie erhalten diese Warnung, weil Sie Administrator dieses Kontos sind. Sicherheitswarnungen lassen sich nicht abschalten.
