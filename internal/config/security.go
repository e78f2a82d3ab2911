package config

import (
	"fmt"

	"github.com/creek-pipeline/creek/internal/auth"
)

// Security settings: listeners with their protocols, TLS, SASL and ACLs.
// With none of them set the broker is what it always was: one PLAINTEXT
// listener (--listen), no authentication, no ACL checks.
var securitySettings = []Setting{
	{Name: "listeners", Flag: "listeners", Type: String, Default: "",
		Doc: "Kafka's listeners: comma-separated NAME://host:port, such as PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093. Each name maps to a security protocol through listener.security.protocol.map (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). Empty: one PLAINTEXT listener on --listen.", check: checkListeners(false)},
	{Name: "advertised.listeners", Flag: "advertised-listeners", Type: String, Default: "",
		Doc: "NAME://host:port per listener that clients are told to connect to (a client is told the address of the listener it connected through). A listener not named here advertises the address the client used.", check: checkListeners(true)},
	{Name: "listener.security.protocol.map", Type: String, Default: auth.DefaultProtocolMap, check: checkProtocolMap,
		Doc: "Security protocol of each listener name, NAME:PROTOCOL comma-separated, e.g. INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL."},
	{Name: "tls-cert", Flag: "tls-cert", Type: String, Default: "",
		Doc: "PEM file with the broker's certificate chain, for SSL and SASL_SSL listeners (ssl.keystore.certificate.chain in Kafka). Reread on SIGHUP."},
	{Name: "tls-key", Flag: "tls-key", Type: String, Default: "",
		Doc: "PEM file with the private key of --tls-cert (unencrypted). Reread on SIGHUP."},
	{Name: "tls-client-ca", Flag: "tls-client-ca", Type: String, Default: "",
		Doc: "PEM file with the authorities that sign client certificates (mTLS; ssl.truststore.certificates in Kafka). Reread on SIGHUP."},
	{Name: "ssl.client.auth", Type: String, Default: "none", Enum: []string{"none", "requested", "required"},
		Doc: "Whether TLS listeners ask clients for a certificate: required (mTLS; the principal is the certificate's subject), requested (a client without one is User:ANONYMOUS, or authenticates with SASL on SASL_SSL), none."},
	{Name: "ssl.principal.mapping.rules", Type: String, Default: "DEFAULT", check: checkMappingRules,
		Doc: "How a client certificate's subject becomes a principal, as Kafka's: RULE:pattern/replacement/[LU] entries and DEFAULT (the whole subject, such as CN=alice,O=creek), comma-separated; e.g. RULE:^CN=([^,]*).*$/$1/L,DEFAULT."},
	{Name: "sasl.enabled.mechanisms", Type: List, Default: "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", check: checkMechanisms,
		Doc: "SASL mechanisms of SASL_PLAINTEXT and SASL_SSL listeners. PLAIN checks the password against the user's SCRAM credential; it sends the password itself, so use it over SASL_SSL only."},
	{Name: "connections.max.reauth.ms", Type: Long, Default: "0", Min: minimum(0),
		Doc: "KIP-368: SASL sessions last this long; a client must authenticate again on the same connection before then (Kafka clients do) or the connection is closed. 0: sessions do not expire."},
	{Name: "connection.failed.authentication.delay.ms", Type: Int, Default: "100", Min: minimum(0),
		Doc: "How long the answer to a failed login is held back before the connection is closed, to slow password guessing."},
	{Name: "sasl.server.max.receive.size", Type: Int, Default: "524288", Min: minimum(1024),
		Doc: "Largest request a client may send on a SASL listener before it has authenticated; a larger one closes the connection."},
	{Name: "super.users", Flag: "super-users", Type: String, Default: "", check: checkSuperUsers,
		Doc: "Principals allowed everything whatever the ACLs say, separated by semicolons: User:admin;User:ops."},
	{Name: "allow.everyone.if.no.acl.found", Type: Bool, Default: "false",
		Doc: "When ACLs are enforced: whether a resource that no ACL names is open to every principal. false, the secure default: only super users and principals with an ACL get in."},
	{Name: "authorizer.class.name", Type: String, Default: "", check: checkAuthorizer,
		Doc: "Empty: ACLs are enforced as soon as a listener authenticates clients (SASL_PLAINTEXT, SASL_SSL, or SSL with ssl.client.auth), and not otherwise. none: never enforced. org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer): always enforced, also on a broker with only PLAINTEXT listeners, whose clients are User:ANONYMOUS."},
	{Name: "max.connections", Type: Int, Default: "2147483647", Min: minimum(1),
		Doc: "Most client connections the broker keeps open at once; a connection over the limit is closed at once (and logged)."},
	{Name: "max.connections.per.ip", Type: Int, Default: "2147483647", Min: minimum(1),
		Doc: "Most connections one IP address may have open; a connection over the limit is closed at once (and logged)."},
}

func init() {
	for i := range securitySettings {
		s := &securitySettings[i]
		BrokerSettings.list = append(BrokerSettings.list, s)
		BrokerSettings.byName[s.Name] = s
	}
}

func checkListeners(advertised bool) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		_, err := auth.ParseListeners(v, nil, advertised)
		return err
	}
}

func checkProtocolMap(v string) error {
	_, err := auth.ParseProtocolMap(v)
	return err
}

func checkMappingRules(v string) error {
	_, err := auth.ParsePrincipalMapping(v)
	return err
}

func checkMechanisms(v string) error {
	_, err := auth.ParseServerMechanisms(v)
	return err
}

func checkSuperUsers(v string) error {
	_, err := auth.ParseSuperUsers(v)
	return err
}

// Authorizer values of authorizer.class.name.
var enforcingAuthorizers = map[string]bool{
	"org.apache.kafka.metadata.authorizer.StandardAuthorizer": true,
	"kafka.security.authorizer.AclAuthorizer":                 true,
	"StandardAuthorizer":                                      true,
}

// AuthorizerMode reads authorizer.class.name: "auto", "none" or "on".
func AuthorizerMode(v string) string {
	switch {
	case v == "":
		return "auto"
	case v == "none":
		return "none"
	}
	return "on"
}

func checkAuthorizer(v string) error {
	if v == "" || v == "none" || enforcingAuthorizers[v] {
		return nil
	}
	return fmt.Errorf("%q: creek's own authorizer has Kafka's semantics; give org.apache.kafka.metadata.authorizer.StandardAuthorizer, none, or leave it empty", v)
}
