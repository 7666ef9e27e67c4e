package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/control/fleet"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
)

const provisionUsage = `usage:
  outpostctl provision UNIT-ID --ca ca.crt --ca-key ca.key --registry DIR --broker ssl://HOST:8883 [--operator-key LINE]... [--site "..."] [--notes "..."] [--renew] -o OUTDIR
      issue the unit's certificate and write OUTDIR/UNIT-ID/{outpost.yaml, ca.crt, unit.crt, unit.key}
  outpostctl provision register-key UNIT-ID --registry DIR --key "outpost-evidence-ed25519 BASE64" [--replace]
      record the unit's evidence key, as 'outpost provision' printed it on the unit
  outpostctl provision list --registry DIR [--json]
      the units (and operators) of the registry
  outpostctl provision operator NAME --ca ca.crt --ca-key ca.key --registry DIR [--renew] -o OUTDIR
      a control-room operator's certificate (common name operator-NAME) for outpostctl
--registry defaults to $OUTPOST_REGISTRY. scripts/dev-ca.sh makes a CA for trials.`

// provisionCmd issues certificates for units and operators and keeps the
// fleet's registry.
func provisionCmd(_ context.Context, g *globals, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(g.env.Stderr, provisionUsage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "register-key":
		return provisionKeyCmd(g, args[1:])
	case "list":
		return provisionListCmd(g, args[1:])
	case "operator":
		return provisionOperatorCmd(g, args[1:])
	}
	return provisionUnitCmd(g, args)
}

// provisionFlags are a provision subcommand's flags. They are its own, not
// the global ones: --broker and --ca here describe the unit, not this
// tool's connection.
func provisionFlags(g *globals, name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("outpostctl provision "+name, flag.ContinueOnError)
	fs.SetOutput(g.env.Stderr)
	fs.Usage = func() { fmt.Fprintln(g.env.Stderr, provisionUsage) }
	reg := fs.String("registry", g.env.Getenv("OUTPOST_REGISTRY"), "the control room's registry directory (env OUTPOST_REGISTRY)")
	return fs, reg
}

func usageErr(g *globals, format string, args ...any) int {
	fmt.Fprintf(g.env.Stderr, "outpostctl provision: "+format+"\n", args...)
	return ExitUsage
}

// missing names the required flags left empty.
func missing(flags map[string]string) []string {
	var out []string
	for _, n := range []string{"ca", "ca-key", "registry", "broker", "o", "key"} {
		if v, ok := flags[n]; ok && v == "" {
			if n == "o" {
				out = append(out, "-o OUTDIR")
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	return out
}

// unitTLSDir is where a provisioned unit's certificate files go on the unit.
const unitTLSDir = "/etc/outpost/tls"

// unitYAML is the provisioned configuration file, in the order written.
type unitYAML struct {
	Unit struct {
		ID   string `yaml:"id"`
		Site string `yaml:"site,omitempty"`
	} `yaml:"unit"`
	DataDir string `yaml:"data_dir"`
	Uplink  struct {
		Broker string `yaml:"broker"`
		TLS    struct {
			CA   string `yaml:"ca"`
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		} `yaml:"tls"`
	} `yaml:"uplink"`
	Security struct {
		SignedCommands string   `yaml:"signed_commands"`
		OperatorKeys   []string `yaml:"operator_keys"`
	} `yaml:"security"`
}

// stringList is a flag given once per value.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// provisionConfig writes the unit's configuration and checks it as the
// unit will.
//
// With operator keys the unit takes only commands they sign (the
// production setting); without, it takes unsigned ones too, as the file
// says.
func provisionConfig(id, site, broker, tlsDir string, operatorKeys []string, now time.Time) ([]byte, error) {
	var y unitYAML
	y.Unit.ID, y.Unit.Site = id, site
	y.DataDir = config.Default().DataDir
	y.Uplink.Broker = broker
	y.Uplink.TLS.CA = filepath.Join(tlsDir, "ca.crt")
	y.Uplink.TLS.Cert = filepath.Join(tlsDir, "unit.crt")
	y.Uplink.TLS.Key = filepath.Join(tlsDir, "unit.key")
	y.Security.SignedCommands, y.Security.OperatorKeys = config.SignedRequired, []string{}
	for _, k := range operatorKeys {
		if _, _, err := config.ParseOperatorKey(k); err != nil {
			return nil, fmt.Errorf("--operator-key %q %v", k, err)
		}
		y.Security.OperatorKeys = append(y.Security.OperatorKeys, strings.Join(strings.Fields(k), " "))
	}
	if len(operatorKeys) == 0 {
		y.Security.SignedCommands = config.SignedOptional
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Outpost unit %s, provisioned %s by outpostctl provision.\n", id, now.UTC().Format(time.DateOnly))
	fmt.Fprintf(&b, "# Install as /etc/outpost/outpost.yaml, with ca.crt, unit.crt and unit.key\n# in %s/.\n", tlsDir)
	b.WriteString("# Every other setting takes its default (configs/outpost.example.yaml\n")
	b.WriteString("# lists them all): set camera, power and modem for the unit's hardware,\n")
	b.WriteString("# which default to simulated ones. Check with: outpost config check FILE\n")
	if len(operatorKeys) == 0 {
		b.WriteString("# No operator key was given: the unit accepts unsigned commands. List the\n")
		b.WriteString("# operators' keys under security.operator_keys and set signed_commands:\n")
		b.WriteString("# required (docs/operations.md, \"Signed commands\").\n")
	}
	b.WriteString("\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(y); err != nil {
		return nil, err
	}
	enc.Close()
	if _, err := config.Parse(id+"/outpost.yaml", b.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func provisionUnitCmd(g *globals, args []string) int {
	fs, reg := provisionFlags(g, "UNIT-ID")
	caFile := fs.String("ca", g.opts.CAFile, "the fleet CA's certificate (PEM; default: --ca of ctl.yaml)")
	caKey := fs.String("ca-key", "", "the fleet CA's private key (PEM, unencrypted)")
	brokerCA := fs.String("broker-ca", "", "the CA the broker's certificate chains to, if not the fleet CA")
	broker := fs.String("broker", "", "the broker as the unit reaches it: ssl://HOST:8883")
	site := fs.String("site", "", "where the unit is deployed (unit.site)")
	notes := fs.String("notes", "", "notes kept in the registry")
	out := fs.String("o", "", "output directory; the unit's files go to OUTDIR/UNIT-ID/")
	tlsDir := fs.String("tls-dir", unitTLSDir, "where the certificate files will be on the unit")
	renew := fs.Bool("renew", false, "issue a new certificate for a unit already registered")
	jsonOut := fs.Bool("json", g.json, "print the registry record as JSON")
	var opKeys stringList
	fs.Var(&opKeys, "operator-key", "an operator's key line, as 'outpostctl operator keygen' prints it (repeat for each): the unit then runs only commands they sign")
	pos, ok := parse(fs, args)
	if !ok {
		return ExitUsage
	}
	if len(pos) != 1 {
		return usageErr(g, "give one unit id\n%s", provisionUsage)
	}
	id := pos[0]
	var err error
	if m := missing(map[string]string{"ca": *caFile, "ca-key": *caKey, "registry": *reg, "broker": *broker, "o": *out}); len(m) > 0 {
		return usageErr(g, "%s must be given\n%s", strings.Join(m, ", "), provisionUsage)
	}
	if err := fleet.ValidUnitID(id); err != nil {
		return usageErr(g, "%v", err)
	}
	if !strings.HasPrefix(*broker, "ssl://") && !strings.HasPrefix(*broker, "mqtts://") {
		return usageErr(g, "--broker %q: a unit with a certificate connects over TLS: give ssl://HOST:PORT (8883 is MQTT over TLS), the address the unit reaches over its cellular link", *broker)
	}
	if !filepath.IsAbs(*tlsDir) {
		return usageErr(g, "--tls-dir %q must be an absolute path on the unit", *tlsDir)
	}
	// Absolute, as the printed commands are run elsewhere, later.
	if *reg, err = filepath.Abs(*reg); err != nil {
		return g.fail(err)
	}
	if *out, err = filepath.Abs(*out); err != nil {
		return g.fail(err)
	}
	now := time.Now()
	yml, err := provisionConfig(id, *site, *broker, *tlsDir, opKeys, now)
	if err != nil {
		return usageErr(g, "the unit's configuration would not be valid, nothing was issued:\n%v", err)
	}
	ca, err := fleet.LoadCA(*caFile, *caKey)
	if err != nil {
		return g.fail(err)
	}
	caPEM := ca.PEM
	if *brokerCA != "" {
		if caPEM, err = os.ReadFile(*brokerCA); err != nil {
			return g.fail(fmt.Errorf("--broker-ca: %w", err))
		}
	}
	r, err := fleet.Open(*reg, true)
	if err != nil {
		return g.fail(err)
	}
	dir := filepath.Join(*out, id)
	if _, err := os.Stat(filepath.Join(dir, "unit.key")); err == nil && !*renew {
		return g.fail(fmt.Errorf("%s already holds a unit key: nothing was issued. Move it away first (after it is installed on the unit), or add --renew to replace it", dir))
	}
	rec, _, err := r.Issue(ca, id, fleet.IssueOptions{Renew: *renew, Site: *site, Notes: *notes}, func(iss *fleet.Issued) error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			b    []byte
			mode os.FileMode
		}{{"ca.crt", caPEM, 0o644}, {"unit.crt", iss.CertPEM, 0o644}, {"unit.key", iss.KeyPEM, 0o600}, {"outpost.yaml", yml, 0o640}} {
			if err := atomicfile.Write(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
				return fmt.Errorf("the unit's files could not be written, nothing was recorded: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return g.fail(err)
	}
	if *jsonOut {
		return g.printJSON(struct {
			fleet.Unit
			Dir string `json:"dir"`
		}{rec, dir})
	}
	w := g.env.Stdout
	verb := "provisioned"
	if *renew && rec.Renewed != nil {
		verb = "given a new certificate (the old one, serial " + rec.PreviousSerials[len(rec.PreviousSerials)-1] + ", should be revoked at the broker)"
	}
	fmt.Fprintf(w, "Unit %s %s.\n", id, verb)
	fmt.Fprintf(w, "  certificate  CN %s, client auth, serial %s, valid until %s, issued by %s\n", id, rec.Serial, rec.NotAfter.Format(time.DateOnly), ca.Cert.Subject.CommonName)
	fmt.Fprintf(w, "  files        %s/{outpost.yaml, ca.crt, unit.crt, unit.key}\n", dir)
	fmt.Fprintf(w, "  registry     %s\n", r.Path())
	if len(opKeys) == 0 {
		fmt.Fprintf(w, "  commands     unsigned ones accepted: no --operator-key was given (see the note in outpost.yaml)\n")
	} else {
		fmt.Fprintf(w, "  commands     only those signed by the %d operator key(s) given\n", len(opKeys))
	}
	fmt.Fprintf(w, `
For the field engineer, on the unit (with %s copied to it, e.g. to ~/%s):
  1. sudo install -d -m 0750 -o root -g outpost %[3]s
     sudo install -m 0644 ca.crt unit.crt %[3]s/
     sudo install -m 0640 -o root -g outpost unit.key %[3]s/
  2. Set camera, power and modem in outpost.yaml for the unit's hardware
     (configs/outpost.example.yaml), then:
     sudo install -m 0640 -o root -g outpost outpost.yaml /etc/outpost/outpost.yaml
     outpost config check /etc/outpost/outpost.yaml
  3. sudo -u outpost outpost provision --config /etc/outpost/outpost.yaml
     makes the unit's evidence key and prints the command that registers it
     here: outpostctl provision register-key %[2]s --registry %[4]s --key "..."
  4. sudo systemctl enable --now outpost
     'outpostctl units' then shows %[2]s online.
unit.key is the unit's secret: once it is on the unit, delete %[1]s (the
control room keeps no copy of it).
`, dir, id, *tlsDir, r.Dir())
	return ExitOK
}

func provisionKeyCmd(g *globals, args []string) int {
	fs, reg := provisionFlags(g, "register-key")
	key := fs.String("key", "", `the unit's public evidence key: "outpost-evidence-ed25519 BASE64"`)
	replace := fs.Bool("replace", false, "replace a different key registered before (the old one is kept)")
	pos, ok := parse(fs, args)
	if !ok {
		return ExitUsage
	}
	if len(pos) != 1 {
		return usageErr(g, "give one unit id\n%s", provisionUsage)
	}
	if m := missing(map[string]string{"registry": *reg, "key": *key}); len(m) > 0 {
		return usageErr(g, "%s must be given\n%s", strings.Join(m, ", "), provisionUsage)
	}
	r, err := fleet.Open(*reg, false)
	if err != nil {
		return g.fail(err)
	}
	u, changed, err := r.RegisterKey(pos[0], *key, *replace)
	if err != nil {
		return g.fail(err)
	}
	if !changed {
		fmt.Fprintf(g.env.Stdout, "Unit %s already has this evidence key (registered %s); nothing changed.\n", u.ID, u.EvidenceKeyAdded.Format(time.DateOnly))
		return ExitOK
	}
	fmt.Fprintf(g.env.Stdout, "Unit %s: evidence key registered in %s:\n  %s\n", u.ID, r.Path(), u.EvidenceKey)
	if n := len(u.PreviousEvidenceKeys); n > 0 {
		fmt.Fprintf(g.env.Stdout, "It replaces %s, kept to check evidence signed before today.\n", u.PreviousEvidenceKeys[n-1])
	}
	return ExitOK
}

func provisionListCmd(g *globals, args []string) int {
	fs, reg := provisionFlags(g, "list")
	jsonOut := fs.Bool("json", g.json, "print JSON instead of a table")
	pos, ok := parse(fs, args)
	if !ok {
		return ExitUsage
	}
	if len(pos) != 0 {
		return usageErr(g, "list takes no arguments\n%s", provisionUsage)
	}
	if *reg == "" {
		return usageErr(g, "--registry must be given\n%s", provisionUsage)
	}
	r, err := fleet.Open(*reg, false)
	if err != nil {
		return g.fail(err)
	}
	units, err := r.Units()
	if err != nil {
		return g.fail(err)
	}
	ops, err := r.Operators()
	if err != nil {
		return g.fail(err)
	}
	if *jsonOut {
		return g.printJSON(struct {
			Units     []fleet.Unit     `json:"units"`
			Operators []fleet.Operator `json:"operators"`
		}{units, ops})
	}
	if len(units) == 0 && len(ops) == 0 {
		fmt.Fprintf(g.env.Stdout, "No units in %s yet: 'outpostctl provision UNIT-ID ...' adds one.\n", r.Path())
		return ExitOK
	}
	now := time.Now()
	tw := tabwriter.NewWriter(g.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tSITE\tCREATED\tSERIAL\tVALID UNTIL\tEVIDENCE KEY")
	for _, u := range units {
		key := "not registered"
		if u.EvidenceKey != "" {
			key = "registered " + u.EvidenceKeyAdded.Local().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, dash(u.Site), u.Created.Local().Format(time.DateOnly), short(u.Serial), validity(u.NotAfter, now), key)
	}
	tw.Flush()
	if len(ops) > 0 {
		fmt.Fprintln(g.env.Stdout)
		tw = tabwriter.NewWriter(g.env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OPERATOR\tCREATED\tSERIAL\tVALID UNTIL")
		for _, o := range ops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Name, o.Created.Local().Format(time.DateOnly), short(o.Serial), validity(o.NotAfter, now))
		}
		tw.Flush()
	}
	return ExitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(serial string) string {
	if len(serial) > 16 {
		return serial[:16] + "…"
	}
	return serial
}

// validity is a certificate's end, flagged when it is near or past.
func validity(notAfter, now time.Time) string {
	s := notAfter.Local().Format(time.DateOnly)
	switch left := notAfter.Sub(now); {
	case left <= 0:
		return s + " EXPIRED: renew with --renew"
	case left < 60*24*time.Hour:
		return fmt.Sprintf("%s (%d days left: renew with --renew)", s, int(left.Hours()/24))
	}
	return s
}

func provisionOperatorCmd(g *globals, args []string) int {
	fs, reg := provisionFlags(g, "operator")
	caFile := fs.String("ca", g.opts.CAFile, "the fleet CA's certificate (PEM)")
	caKey := fs.String("ca-key", "", "the fleet CA's private key (PEM, unencrypted)")
	out := fs.String("o", "", "output directory; the files go to OUTDIR/operator-NAME/")
	renew := fs.Bool("renew", false, "issue a new certificate for an operator already registered")
	pos, ok := parse(fs, args)
	if !ok {
		return ExitUsage
	}
	if len(pos) != 1 {
		return usageErr(g, "give one operator name\n%s", provisionUsage)
	}
	if m := missing(map[string]string{"ca": *caFile, "ca-key": *caKey, "registry": *reg, "o": *out}); len(m) > 0 {
		return usageErr(g, "%s must be given\n%s", strings.Join(m, ", "), provisionUsage)
	}
	cn, err := fleet.OperatorName(pos[0])
	if err != nil {
		return usageErr(g, "%v", err)
	}
	ca, err := fleet.LoadCA(*caFile, *caKey)
	if err != nil {
		return g.fail(err)
	}
	r, err := fleet.Open(*reg, true)
	if err != nil {
		return g.fail(err)
	}
	dir, err := filepath.Abs(filepath.Join(*out, cn))
	if err != nil {
		return g.fail(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "operator.key")); err == nil && !*renew {
		return g.fail(fmt.Errorf("%s already holds an operator key: nothing was issued. Move it away first, or add --renew to replace it", dir))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return g.fail(err)
	}
	rec, _, err := r.IssueOperator(ca, cn, *renew, func(iss *fleet.Issued) error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			b    []byte
			mode os.FileMode
		}{{"ca.crt", ca.PEM, 0o644}, {"operator.crt", iss.CertPEM, 0o644}, {"operator.key", iss.KeyPEM, 0o600}} {
			if err := atomicfile.Write(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
				return fmt.Errorf("the operator's files could not be written, nothing was recorded: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return g.fail(err)
	}
	fmt.Fprintf(g.env.Stdout, `Operator certificate %s: serial %s, valid until %s, in %s/{ca.crt, operator.crt, operator.key}.

For outpostctl, in ~/.config/outpost/ctl.yaml (operator.key is secret: keep it mode 0600):
  broker: ssl://BROKER-HOST:8883
  ca: %[4]s/ca.crt
  cert: %[4]s/operator.crt
  key: %[4]s/operator.key

For the broker, add to /etc/mosquitto/outpost.acl (then systemctl reload mosquitto):
  user %[1]s
  topic read outpost/#
  topic write outpost/+/cmd/#
  topic write outpost/+/config/desired
  topic write outpost/+/xfer/+/ack
`, cn, rec.Serial, rec.NotAfter.Format(time.DateOnly), dir)
	return ExitOK
}
