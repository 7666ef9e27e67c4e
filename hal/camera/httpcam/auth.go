package httpcam

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// challenge is one WWW-Authenticate challenge.
type challenge struct {
	scheme string            // lower case: "basic", "digest"
	params map[string]string // names in lower case
}

// parseChallenges parses WWW-Authenticate header values (RFC 7235): each
// may hold several challenges, each a scheme followed by comma-separated
// name=value parameters, values plain or quoted. It is lenient: what it
// cannot parse it skips.
func parseChallenges(headers []string) []challenge {
	var out []challenge
	for _, h := range headers {
		p := parser{s: h}
		cur := -1
		for {
			p.skip(" \t,")
			if p.done() {
				break
			}
			tok := p.token()
			if tok == "" {
				p.i++ // not a token character: skip it
				continue
			}
			save := p.i
			p.skip(" \t")
			if cur >= 0 && p.peek() == '=' {
				p.i++
				p.skip(" \t")
				out[cur].params[strings.ToLower(tok)] = p.value()
				continue
			}
			// A token not followed by '=' starts a new challenge.
			p.i = save
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			cur = len(out) - 1
		}
	}
	return out
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) skip(chars string) {
	for !p.done() && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted string.
func (p *parser) value() string {
	if p.peek() != '"' {
		return p.token()
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if !p.done() {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// authorizer makes Authorization headers for one camera.
type authorizer interface {
	header(method, uri string) (string, error)
}

type basicAuth struct{ user, pass string }

func (b basicAuth) header(string, string) (string, error) {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(b.user+":"+b.pass)), nil
}

// digestAuth answers an RFC 7616 digest challenge (and the RFC 2069 form
// without qop that old cameras use). The nonce is reused, counting, until
// the camera says it is stale.
type digestAuth struct {
	user, pass string
	realm      string
	nonce      string
	opaque     string
	algorithm  string // as the camera spelt it; "" means MD5
	newHash    func() hash.Hash
	sess       bool
	qop        string // "auth", "auth-int" or ""
	userhash   bool
	nc         uint32
	cnonce     func() string
}

// newDigest prepares to answer the challenge c; an error says why it
// cannot (an algorithm or protection this client does not implement).
func newDigest(c challenge, user, pass string) (*digestAuth, error) {
	d := &digestAuth{user: user, pass: pass, realm: c.params["realm"], nonce: c.params["nonce"], opaque: c.params["opaque"], algorithm: c.params["algorithm"], cnonce: randomCnonce}
	if d.nonce == "" {
		return nil, fmt.Errorf("the digest challenge has no nonce")
	}
	alg := strings.ToUpper(d.algorithm)
	if s, ok := strings.CutSuffix(alg, "-SESS"); ok {
		alg, d.sess = s, true
	}
	switch alg {
	case "", "MD5":
		d.newHash = md5.New
	case "SHA-256":
		d.newHash = sha256.New
	default:
		return nil, fmt.Errorf("the camera asks for digest algorithm %s, which is not supported (MD5 and SHA-256 are)", d.algorithm)
	}
	if q, ok := c.params["qop"]; ok {
		offered := map[string]bool{}
		for _, o := range strings.Split(q, ",") {
			offered[strings.TrimSpace(strings.ToLower(o))] = true
		}
		switch {
		case offered["auth"]:
			d.qop = "auth"
		case offered["auth-int"]:
			d.qop = "auth-int"
		default:
			return nil, fmt.Errorf("the camera offers digest protection %q, which is not supported", q)
		}
	}
	d.userhash = strings.EqualFold(c.params["userhash"], "true")
	return d, nil
}

func (d *digestAuth) h(s string) string {
	h := d.newHash()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// response computes the digest response for one request.
func (d *digestAuth) response(method, uri, nc, cnonce string) string {
	ha1 := d.h(d.user + ":" + d.realm + ":" + d.pass)
	if d.sess {
		ha1 = d.h(ha1 + ":" + d.nonce + ":" + cnonce)
	}
	a2 := method + ":" + uri
	if d.qop == "auth-int" {
		a2 += ":" + d.h("") // a GET has an empty body
	}
	ha2 := d.h(a2)
	if d.qop == "" {
		return d.h(ha1 + ":" + d.nonce + ":" + ha2)
	}
	return d.h(ha1 + ":" + d.nonce + ":" + nc + ":" + cnonce + ":" + d.qop + ":" + ha2)
}

func (d *digestAuth) header(method, uri string) (string, error) {
	d.nc++
	nc := fmt.Sprintf("%08x", d.nc)
	cnonce := d.cnonce()
	user := d.user
	if d.userhash {
		user = d.h(d.user + ":" + d.realm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s`, quote(user), quote(d.realm), quote(d.nonce), quote(uri))
	if d.algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", d.algorithm)
	}
	fmt.Fprintf(&b, ", response=%s", quote(d.response(method, uri, nc, cnonce)))
	if d.opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quote(d.opaque))
	}
	if d.qop != "" {
		fmt.Fprintf(&b, ", qop=%s, nc=%s, cnonce=%s", d.qop, nc, quote(cnonce))
	}
	if d.userhash {
		b.WriteString(", userhash=true")
	}
	return b.String(), nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func randomCnonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// chooseAuth picks how to answer the camera's challenges: digest if it
// offers it (SHA-256 before MD5), else basic. Basic credentials are only
// ever sent to a camera that asked for them.
func chooseAuth(cs []challenge, user, pass string) (authorizer, error) {
	var digests []challenge
	basic := false
	for _, c := range cs {
		switch c.scheme {
		case "digest":
			digests = append(digests, c)
		case "basic":
			basic = true
		}
	}
	// Prefer the strongest digest algorithm offered.
	rank := func(c challenge) int {
		if strings.HasPrefix(strings.ToUpper(c.params["algorithm"]), "SHA-256") {
			return 0
		}
		return 1
	}
	var firstErr error
	for r := range 2 {
		for _, c := range digests {
			if rank(c) != r {
				continue
			}
			d, err := newDigest(c, user, pass)
			if err == nil {
				return d, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if basic {
		return basicAuth{user, pass}, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	var schemes []string
	for _, c := range cs {
		schemes = append(schemes, c.scheme)
	}
	return nil, fmt.Errorf("the camera asks for authentication by %s, which is not supported (basic and digest are)", strings.Join(schemes, ", "))
}
