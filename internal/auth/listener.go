package auth

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one entry of Kafka's listeners setting: a name, the security
// protocol the name maps to, and the address to listen on.
type Listener struct {
	Name     string
	Protocol Protocol
	Addr     string // host:port; an empty host means every interface
}

// DefaultProtocolMap is Kafka's default listener.security.protocol.map.
const DefaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// ParseProtocolMap parses listener.security.protocol.map (NAME:PROTOCOL,...).
func ParseProtocolMap(s string) (map[string]Protocol, error) {
	out := map[string]Protocol{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, proto, ok := strings.Cut(kv, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q: want NAME:PROTOCOL, such as EXTERNAL:SASL_SSL", kv)
		}
		p, err := ParseProtocol(proto)
		if err != nil {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q: %w", kv, err)
		}
		out[strings.ToUpper(name)] = p
	}
	return out, nil
}

// ParseListeners parses a listeners (or advertised.listeners) value such
// as "PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093". Names are looked up in
// the protocol map (nil: any name, to check the syntax alone); advertised
// addresses must name a host.
func ParseListeners(s string, protocols map[string]Protocol, advertised bool) ([]Listener, error) {
	what := "listeners"
	if advertised {
		what = "advertised.listeners"
	}
	var out []Listener
	names, ports := map[string]bool{}, map[string]bool{}
	for _, entry := range strings.Split(s, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		name, addr, ok := strings.Cut(entry, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s entry %q: want NAME://host:port, such as SASL_SSL://:9093", what, entry)
		}
		name = strings.ToUpper(name)
		proto, ok := protocols[name]
		if !ok && protocols != nil {
			return nil, fmt.Errorf("%s entry %q: listener name %s is not in listener.security.protocol.map", what, entry, name)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %v", what, entry, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("%s entry %q: port %q is not a number from 0 to 65535", what, entry, port)
		}
		if advertised && (host == "" || host == "0.0.0.0" || host == "::") {
			return nil, fmt.Errorf("%s entry %q has no host clients could connect to", what, entry)
		}
		if names[name] {
			return nil, fmt.Errorf("%s: listener %s is given twice", what, name)
		}
		if !advertised && port != "0" && ports[port] {
			return nil, fmt.Errorf("%s: port %s is used by two listeners", what, port)
		}
		names[name], ports[port] = true, true
		out = append(out, Listener{Name: name, Protocol: proto, Addr: addr})
	}
	if len(out) == 0 && !advertised {
		return nil, fmt.Errorf("%s is empty", what)
	}
	return out, nil
}
