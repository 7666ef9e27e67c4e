package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/internal/atomicfile"
)

// FileName is the registry's file in its directory.
const FileName = "registry.json"

// SchemaVersion is the registry format this package reads and writes.
const SchemaVersion = 1

// OperatorPrefix starts the common name of every operator certificate.
const OperatorPrefix = "operator-"

// Errors callers tell apart; the messages wrapping them say what to do.
var (
	ErrExists  = errors.New("already registered")
	ErrUnknown = errors.New("not registered")
)

// Cert identifies an issued certificate.
type Cert struct {
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint"`
	NotAfter    time.Time `json:"not_after"`
}

// Unit is a unit's record.
type Unit struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Site    string    `json:"site,omitempty"`
	Notes   string    `json:"notes,omitempty"`
	Cert
	// Renewed is when the current certificate replaced an earlier one,
	// whose serials are kept (for the broker's revocation list).
	Renewed         *time.Time `json:"renewed,omitempty"`
	PreviousSerials []string   `json:"previous_serials,omitempty"`
	// EvidenceKey is the unit's public evidence key line, once registered.
	EvidenceKey          string     `json:"evidence_key,omitempty"`
	EvidenceKeyAdded     *time.Time `json:"evidence_key_added,omitempty"`
	PreviousEvidenceKeys []string   `json:"previous_evidence_keys,omitempty"`
}

// Operator is a control-room operator's certificate record; Name is the
// certificate's common name (operator-NAME).
type Operator struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Cert
	Renewed         *time.Time `json:"renewed,omitempty"`
	PreviousSerials []string   `json:"previous_serials,omitempty"`
}

type file struct {
	Version   int                  `json:"version"`
	Units     map[string]*Unit     `json:"units"`
	Operators map[string]*Operator `json:"operators,omitempty"`
}

// Registry is a registry directory.
type Registry struct {
	dir string
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Open opens the registry in dir. With create, a missing directory is
// made (mode 0750); otherwise it must exist.
func Open(dir string, create bool) (*Registry, error) {
	if dir == "" {
		return nil, errors.New("fleet: no registry directory: give --registry DIR (or set OUTPOST_REGISTRY)")
	}
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return nil, fmt.Errorf("fleet: registry %s is not a directory", dir)
	case errors.Is(err, fs.ErrNotExist) && create:
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("fleet: registry: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("fleet: no registry at %s: check --registry (provisioning the first unit creates it)", dir)
	case err != nil:
		return nil, fmt.Errorf("fleet: registry: %w", err)
	}
	return &Registry{dir: dir, Now: time.Now}, nil
}

// Path is the registry file.
func (r *Registry) Path() string { return filepath.Join(r.dir, FileName) }

// Dir is the registry directory.
func (r *Registry) Dir() string { return r.dir }

func (r *Registry) read() (*file, error) {
	f := &file{Version: SchemaVersion, Units: map[string]*Unit{}, Operators: map[string]*Operator{}}
	b, err := os.ReadFile(r.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: registry: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("fleet: registry %s is damaged (%v): it was left as it is; restore it from a backup", r.Path(), err)
	}
	if f.Version != SchemaVersion {
		return nil, fmt.Errorf("fleet: registry %s is version %d; this outpostctl reads version %d: use a newer outpostctl", r.Path(), f.Version, SchemaVersion)
	}
	if f.Units == nil {
		f.Units = map[string]*Unit{}
	}
	if f.Operators == nil {
		f.Operators = map[string]*Operator{}
	}
	return f, nil
}

// update applies fn to the registry under the directory's lock and, if fn
// succeeds, replaces the file atomically.
func (r *Registry) update(fn func(*file) error) error {
	unlock, err := lockDir(r.dir)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := r.read()
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("fleet: encoding the registry: %w", err)
	}
	// Temporary files left by a crash of an earlier change: under the
	// lock, none can be in use.
	if old, _ := filepath.Glob(filepath.Join(r.dir, "."+FileName+".tmp*")); len(old) > 0 {
		for _, p := range old {
			os.Remove(p)
		}
	}
	if err := atomicfile.Write(r.Path(), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("fleet: registry: %w", err)
	}
	return nil
}

// Units lists the registered units by id.
func (r *Registry) Units() ([]Unit, error) {
	f, err := r.read()
	if err != nil {
		return nil, err
	}
	out := make([]Unit, 0, len(f.Units))
	for _, u := range f.Units {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Unit returns one unit's record.
func (r *Registry) Unit(id string) (Unit, bool, error) {
	f, err := r.read()
	if err != nil {
		return Unit{}, false, err
	}
	u, ok := f.Units[id]
	if !ok {
		return Unit{}, false, nil
	}
	return *u, true, nil
}

// Operators lists the operators' certificates by name.
func (r *Registry) Operators() ([]Operator, error) {
	f, err := r.read()
	if err != nil {
		return nil, err
	}
	out := make([]Operator, 0, len(f.Operators))
	for _, o := range f.Operators {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ValidUnitID checks a unit id: the config's rule (1-64 of a-z, 0-9 and
// '-'), and not the operators' prefix.
func ValidUnitID(id string) error {
	if !config.ValidUnitID(id) {
		return fmt.Errorf("fleet: unit id %q must be 1-64 characters of a-z, 0-9 and '-' (it becomes part of MQTT topics and the certificate name)", id)
	}
	if strings.HasPrefix(id, OperatorPrefix) {
		return fmt.Errorf("fleet: unit id %q starts with %q, which names control-room operators' certificates: choose another id", id, OperatorPrefix)
	}
	return nil
}

// IssueOptions are the details of a unit's issue.
type IssueOptions struct {
	// Renew allows a new certificate for a unit already registered.
	Renew bool
	// Site and Notes are recorded (on a renewal, only when not empty).
	Site, Notes string
}

// Issue makes a certificate for the unit and records the unit. deliver
// gets the certificate and key before anything is recorded (it writes
// them out); if it fails, the registry is left as it was. A unit already
// registered is refused (ErrExists) unless o.Renew.
func (r *Registry) Issue(ca *CA, unitID string, o IssueOptions, deliver func(*Issued) error) (Unit, *Issued, error) {
	if err := ValidUnitID(unitID); err != nil {
		return Unit{}, nil, err
	}
	var rec Unit
	var iss *Issued
	err := r.update(func(f *file) error {
		old, exists := f.Units[unitID]
		if exists && !o.Renew {
			return fmt.Errorf("fleet: unit %s is %w in %s (certificate %s, valid until %s): to give it a new certificate, add --renew", unitID, ErrExists, r.dir, old.Serial, old.NotAfter.Format(time.DateOnly))
		}
		now := r.Now().UTC().Truncate(time.Second)
		var err error
		if iss, err = issueAndDeliver(ca, unitID, "outpost unit", now, deliver); err != nil {
			return err
		}
		if exists {
			rec = *old
			rec.PreviousSerials = append(append([]string(nil), rec.PreviousSerials...), old.Serial)
			rec.Renewed = &now
			if o.Site != "" {
				rec.Site = o.Site
			}
			if o.Notes != "" {
				rec.Notes = o.Notes
			}
		} else {
			rec = Unit{ID: unitID, Created: now, Site: o.Site, Notes: o.Notes}
		}
		rec.Cert = Cert{Serial: iss.Serial(), Fingerprint: iss.Fingerprint(), NotAfter: iss.Cert.NotAfter.UTC()}
		f.Units[unitID] = &rec
		return nil
	})
	if err != nil {
		return Unit{}, nil, err
	}
	return rec, iss, nil
}

// issueAndDeliver issues a client certificate and hands it to deliver
// (which writes the files); the registry records it only if both succeed.
func issueAndDeliver(ca *CA, cn, role string, now time.Time, deliver func(*Issued) error) (*Issued, error) {
	iss, err := ca.IssueClient(cn, role, now)
	if err != nil {
		return nil, err
	}
	if deliver != nil {
		if err := deliver(iss); err != nil {
			return nil, err
		}
	}
	return iss, nil
}

// OperatorName is the certificate name of an operator: "operator-NAME"
// (a name already starting with it is kept as it is).
func OperatorName(name string) (string, error) {
	cn := name
	if !strings.HasPrefix(cn, OperatorPrefix) {
		cn = OperatorPrefix + name
	}
	if !config.ValidUnitID(cn) || cn == OperatorPrefix {
		return "", fmt.Errorf("fleet: operator name %q must be 1-55 characters of a-z, 0-9 and '-' (the certificate is named %sNAME)", name, OperatorPrefix)
	}
	return cn, nil
}

// IssueOperator makes a control-room operator's certificate (common name
// operator-NAME) and records it, as Issue does for a unit.
func (r *Registry) IssueOperator(ca *CA, name string, renew bool, deliver func(*Issued) error) (Operator, *Issued, error) {
	cn, err := OperatorName(name)
	if err != nil {
		return Operator{}, nil, err
	}
	var rec Operator
	var iss *Issued
	err = r.update(func(f *file) error {
		old, exists := f.Operators[cn]
		if exists && !renew {
			return fmt.Errorf("fleet: operator %s is %w in %s (certificate %s, valid until %s): to give a new certificate, add --renew", cn, ErrExists, r.dir, old.Serial, old.NotAfter.Format(time.DateOnly))
		}
		now := r.Now().UTC().Truncate(time.Second)
		var err error
		if iss, err = issueAndDeliver(ca, cn, "outpost operator", now, deliver); err != nil {
			return err
		}
		if exists {
			rec = *old
			rec.PreviousSerials = append(append([]string(nil), rec.PreviousSerials...), old.Serial)
			rec.Renewed = &now
		} else {
			rec = Operator{Name: cn, Created: now}
		}
		rec.Cert = Cert{Serial: iss.Serial(), Fingerprint: iss.Fingerprint(), NotAfter: iss.Cert.NotAfter.UTC()}
		f.Operators[cn] = &rec
		return nil
	})
	if err != nil {
		return Operator{}, nil, err
	}
	return rec, iss, nil
}

// RegisterKey records a unit's public evidence key (a line as 'outpost
// provision' prints it). Registering the key already recorded changes
// nothing (changed is false). A different key replaces the recorded one
// only with replace, and the old one is kept in previous_evidence_keys:
// evidence signed before the change is still checked with it.
func (r *Registry) RegisterKey(unitID, key string, replace bool) (u Unit, changed bool, err error) {
	pub, err := identity.ParsePublicKey(key)
	if err != nil {
		return Unit{}, false, err
	}
	line := identity.FormatPublicKey(pub)
	err = r.update(func(f *file) error {
		rec, ok := f.Units[unitID]
		if !ok {
			return fmt.Errorf("fleet: unit %s is %w in %s: provision it first ('outpostctl provision %s ...'), or check --registry and the id", unitID, ErrUnknown, r.dir, unitID)
		}
		switch {
		case rec.EvidenceKey == line:
			u = *rec
			return errUnchanged
		case rec.EvidenceKey != "" && !replace:
			return fmt.Errorf("fleet: unit %s already has another evidence key (registered %s). A new key means the unit's key file was lost or replaced: if that is so, add --replace (the old key is kept to check earlier evidence)", unitID, rec.EvidenceKeyAdded.Format(time.DateOnly))
		case rec.EvidenceKey != "":
			rec.PreviousEvidenceKeys = append(rec.PreviousEvidenceKeys, rec.EvidenceKey)
		}
		now := r.Now().UTC().Truncate(time.Second)
		rec.EvidenceKey, rec.EvidenceKeyAdded = line, &now
		u, changed = *rec, true
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return u, false, nil
	}
	return u, changed, err
}

var errUnchanged = errors.New("unchanged")
