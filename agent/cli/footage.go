package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-cctv/outpost/agent"
	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/agent/identity"
	"github.com/outpost-cctv/outpost/footage"
)

// footageCmd is `outpost footage`: what a field engineer on site, with no
// link, uses to see, take away and check the unit's footage. It reads the
// store directly, and works whether or not the agent is running (reading
// beside it); verify repairs a store left by a crash when the agent is
// stopped.
func footageCmd(ctx context.Context, env Env, args []string) int {
	subs := map[string]func(context.Context, Env, []string) int{
		"ls":       footageLs,
		"export":   footageExport,
		"snapshot": footageSnapshot,
		"verify":   footageVerify,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		footageUsage(env.Stderr)
		if len(args) == 0 {
			return agent.ExitUsage
		}
		return agent.ExitOK
	}
	sub, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "outpost footage: unknown subcommand %q\n\n", args[0])
		footageUsage(env.Stderr)
		return agent.ExitUsage
	}
	return sub(ctx, env, args[1:])
}

func footageUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: outpost footage SUBCOMMAND --data DIR [flags]

  ls        list segments, the time span, sizes, holds and faults
  export    write a time range as an MP4 file:
              --from T --to T  or  --last 10m, and -o FILE.mp4
  snapshot  write the frame nearest a time as a JPEG file: --at T -o FILE.jpg
  verify    check every record's CRC, every sealed segment's SHA-256 against
            the chain, and the chain's signed heads against the unit's
            evidence key; exit 1 with a report if anything is damaged or
            altered (repairs a store left by a crash if the agent is
            stopped). --pubkey "outpost-evidence-ed25519 BASE64" checks an
            SD card on another machine against the key the control room
            registered, read-only (nothing on the card is changed)

Times are RFC 3339 (2025-03-04T03:12:00Z) or local "2006-01-02 15:04:05".
Exit codes: 0 done, 1 failure or damage found, 2 bad usage, 3 no footage in
the range.
`)
}

// storeFlags are where the store is and its key, when encrypted.
type storeFlags struct{ data, keyFile *string }

// footageFlags are the flags every subcommand takes.
func footageFlags(name string, env Env) (*flag.FlagSet, storeFlags) {
	fs := newFlagSet("footage "+name, env)
	var sf storeFlags
	sf.data = fs.String("data", config.Default().DataDir, "the agent's data directory (data_dir in its config)")
	keyEnv := ""
	if env.Getenv != nil {
		keyEnv = env.Getenv("OUTPOST_FOOTAGE_KEY_FILE")
	}
	sf.keyFile = fs.String("key-file", keyEnv, "the footage encryption key file (privacy.encryption_key_file), to read encrypted footage (env OUTPOST_FOOTAGE_KEY_FILE)")
	return fs, sf
}

// openFootage opens the store read-only, so that it can be read while the
// agent records.
func openFootage(env Env, sf storeFlags) (*footage.Store, int) {
	o := footage.DefaultOptions()
	o.ReadOnly, o.KeyFile = true, *sf.keyFile
	s, err := footage.Open(footage.Dir(*sf.data), o, nil, nil)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost footage:", err)
		return nil, agent.ExitFailure
	}
	return s, agent.ExitOK
}

// parseWhen reads a time given on the command line: RFC 3339, or local
// "2006-01-02 15:04:05" (also with a T, or to the minute).
func parseWhen(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2025-03-04T03:12:00Z) or local \"2025-03-04 03:12:00\"", s)
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

func footageLs(ctx context.Context, env Env, args []string) int {
	fs, sf := footageFlags("ls", env)
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "outpost footage ls: unexpected argument %q\n", fs.Arg(0))
		return agent.ExitUsage
	}
	s, code := openFootage(env, sf)
	if s == nil {
		return code
	}
	defer s.Close()
	segs := s.Segments()
	st := s.Stats()
	w := env.Stdout
	fmt.Fprintf(w, "footage in %s: %d %s, %s\n", s.Dir(), len(segs), plural(len(segs), "segment"), humanBytes(st.BytesUsed))
	if len(segs) > 0 {
		oldest, newest := s.Span()
		fmt.Fprintf(w, "from %s to %s\n", fmtWhen(oldest), fmtWhen(newest))
	}
	if st.DiskTotal > 0 {
		fmt.Fprintf(w, "disk: %s free of %s\n", humanBytes(st.DiskFree), humanBytes(st.DiskTotal))
	}
	if len(segs) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SEGMENT\tFROM\tTO\tFRAMES\tEVENTS\tSIZE\tSTATE")
		for _, sg := range segs {
			var state []string
			state = append(state, map[bool]string{true: "sealed", false: "open"}[sg.Sealed])
			if sg.Held {
				state = append(state, "held")
			}
			if !sg.ClockSet {
				state = append(state, "clock-not-set")
			}
			if sg.Damaged > 0 {
				state = append(state, fmt.Sprintf("%d-damaged", sg.Damaged))
			}
			if len(sg.SideFiles) > 0 {
				state = append(state, "recovered")
			}
			from, to := "-", "-"
			if sg.Frames > 0 {
				from, to = fmtWhen(sg.Start), fmtWhen(sg.End)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", sg.Name, from, to, sg.Frames, sg.Events, humanBytes(sg.Size), strings.Join(state, ","))
		}
		tw.Flush()
	}
	holds := s.Holds()
	fmt.Fprintf(w, "\nholds: %d", len(holds))
	if len(holds) > 0 {
		fmt.Fprintf(w, " (%s held)", humanBytes(st.HeldBytes))
	}
	fmt.Fprintln(w)
	for _, h := range holds {
		fmt.Fprintf(w, "  %s  %s to %s  %q by %q\n", h.ID, fmtWhen(h.From), fmtWhen(h.To), h.Reason, h.By)
	}
	for _, f := range s.Faults() {
		fmt.Fprintf(w, "fault %s: %s\n", f.Code, f.Message)
	}
	for _, r := range s.Recovered() {
		fmt.Fprintf(w, "note: %s: %s\n", r.Segment, r.Action)
	}
	return agent.ExitOK
}

func footageExport(ctx context.Context, env Env, args []string) int {
	fs, sf := footageFlags("export", env)
	fromS := fs.String("from", "", "start of the range (RFC 3339 or local \"2006-01-02 15:04:05\")")
	toS := fs.String("to", "", "end of the range")
	last := fs.String("last", "", "instead of --from/--to: this much footage up to the newest frame (e.g. 10m)")
	out := fs.String("o", "", "the MP4 file to write")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	usage := func(msg string) int {
		fmt.Fprintln(env.Stderr, "outpost footage export:", msg)
		return agent.ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *out == "":
		return usage("-o FILE.mp4 is required")
	case *last != "" && (*fromS != "" || *toS != ""):
		return usage("give --last, or --from and --to, not both")
	case *last == "" && (*fromS == "" || *toS == ""):
		return usage("give --from and --to, or --last (e.g. --last 10m)")
	}
	var from, to time.Time
	var lastD time.Duration
	if *last != "" {
		d, err := config.ParseDuration(*last)
		if err != nil || d <= 0 {
			return usage(fmt.Sprintf("--last %q: give a positive duration such as 30s, 10m or 2h", *last))
		}
		lastD = d.D()
	} else {
		var err error
		if from, err = parseWhen(*fromS); err != nil {
			return usage("--from: " + err.Error())
		}
		if to, err = parseWhen(*toS); err != nil {
			return usage("--to: " + err.Error())
		}
		if !from.Before(to) {
			return usage("--from must be before --to")
		}
	}
	s, code := openFootage(env, sf)
	if s == nil {
		return code
	}
	defer s.Close()
	if lastD > 0 {
		_, newest := s.Span()
		if newest.IsZero() {
			fmt.Fprintf(env.Stderr, "outpost footage export: %s holds no footage\n", s.Dir())
			return agent.ExitNoFootage
		}
		// The range ends just after the newest frame, so that it is in.
		to = newest.Add(time.Nanosecond)
		from = to.Add(-lastD)
	}

	var info footage.ExportInfo
	sum, err := writeAtomically(*out, func(w io.Writer) error {
		var err error
		info, err = s.Export(ctx, w, from, to)
		return err
	})
	switch {
	case errors.Is(err, footage.ErrNoFootage):
		fmt.Fprintf(env.Stderr, "outpost footage export: no footage between %s and %s; nothing written (see 'outpost footage ls')\n", fmtWhen(from), fmtWhen(to))
		return agent.ExitNoFootage
	case err != nil:
		fmt.Fprintln(env.Stderr, "outpost footage export:", err)
		return agent.ExitFailure
	}
	fmt.Fprintf(env.Stdout, "%s: %d frames, %s, %dx%d, %s\n", *out, info.Frames, info.Duration.Round(time.Millisecond), info.Width, info.Height, humanBytes(info.Bytes))
	fmt.Fprintf(env.Stdout, "  from %s to %s\n", fmtWhen(info.First), fmtWhen(info.End))
	fmt.Fprintf(env.Stdout, "  sha256 %s\n", sum)
	if info.Skipped > 0 {
		fmt.Fprintf(env.Stdout, "  %d damaged frames left out (run 'outpost footage verify')\n", info.Skipped)
	}
	return agent.ExitOK
}

// writeAtomically writes a file through a temporary name in the same
// directory, syncs and renames it, so that a failed or interrupted export
// leaves no partial file; it returns the SHA-256 of what was written.
func writeAtomically(path string, write func(io.Writer) error) (string, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	h := sha256.New()
	err = write(io.MultiWriter(f, h))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func footageSnapshot(ctx context.Context, env Env, args []string) int {
	fs, sf := footageFlags("snapshot", env)
	atS := fs.String("at", "", "the time (RFC 3339 or local \"2006-01-02 15:04:05\")")
	within := fs.Duration("within", time.Minute, "take the nearest frame only if it is this close")
	out := fs.String("o", "", "the JPEG file to write")
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	if fs.NArg() > 0 || *atS == "" || *out == "" {
		fmt.Fprintln(env.Stderr, "usage: outpost footage snapshot --data DIR --at TIME -o FILE.jpg")
		return agent.ExitUsage
	}
	at, err := parseWhen(*atS)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost footage snapshot: --at:", err)
		return agent.ExitUsage
	}
	s, code := openFootage(env, sf)
	if s == nil {
		return code
	}
	defer s.Close()
	fr, err := s.Nearest(ctx, at, *within)
	switch {
	case errors.Is(err, footage.ErrNoFootage):
		fmt.Fprintf(env.Stderr, "outpost footage snapshot: no frame within %s of %s; nothing written\n", *within, fmtWhen(at))
		return agent.ExitNoFootage
	case err != nil:
		fmt.Fprintln(env.Stderr, "outpost footage snapshot:", err)
		return agent.ExitFailure
	}
	sum, err := writeAtomically(*out, func(w io.Writer) error {
		_, err := w.Write(fr.Data)
		return err
	})
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost footage snapshot:", err)
		return agent.ExitFailure
	}
	fmt.Fprintf(env.Stdout, "%s: frame %d captured %s (%s from the time asked), %s\n  sha256 %s\n",
		*out, fr.Seq, fmtWhen(fr.Time), fr.Time.Sub(at).Round(time.Millisecond), humanBytes(int64(len(fr.Data))), sum)
	return agent.ExitOK
}

func footageVerify(ctx context.Context, env Env, args []string) int {
	fs, sf := footageFlags("verify", env)
	pubS := fs.String("pubkey", "", `the unit's evidence public key, "outpost-evidence-ed25519 BASE64" (default: the key in the data directory); opens the store read-only`)
	if fs.Parse(args) != nil {
		return agent.ExitUsage
	}
	var pub ed25519.PublicKey
	var keyNote string
	if *pubS != "" {
		var err error
		if pub, err = identity.ParsePublicKey(*pubS); err != nil {
			fmt.Fprintln(env.Stderr, "outpost footage verify: --pubkey:", err)
			return agent.ExitUsage
		}
	} else if k, err := identity.Load(*sf.data); err == nil {
		pub = k.PublicKey()
	} else {
		keyNote = fmt.Sprintf("the unit's evidence key could not be read (%v): the heads' signatures are checked only against the key each names; give --pubkey to check them against the unit's", err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "outpost footage verify: unexpected argument %q\n", fs.Arg(0))
		return agent.ExitUsage
	}
	dir := footage.Dir(*sf.data)
	if _, err := os.Stat(dir); err != nil {
		fmt.Fprintf(env.Stderr, "outpost footage verify: %v (is --data the agent's data directory?)\n", err)
		return agent.ExitFailure
	}
	// Open for writing when the agent is stopped, so that a store left by
	// a crash is recovered; read-only beside a running agent, and for a
	// card checked against a key given on the command line (another
	// unit's card, or evidence: nothing on it is changed).
	var s *footage.Store
	var err error
	if *pubS != "" {
		var code int
		if s, code = openFootage(env, sf); s == nil {
			return code
		}
	} else {
		o := footage.DefaultOptions()
		o.KeyFile = *sf.keyFile
		s, err = footage.Open(dir, o, nil, nil)
	}
	if err != nil && strings.Contains(err.Error(), "in use") {
		fmt.Fprintln(env.Stdout, "the agent is recording: verifying read-only")
		var code int
		if s, code = openFootage(env, sf); s == nil {
			return code
		}
	} else if err != nil {
		fmt.Fprintln(env.Stderr, "outpost footage verify:", err)
		return agent.ExitFailure
	}
	defer s.Close()
	rep, err := s.VerifyWith(ctx, pub)
	if err != nil {
		fmt.Fprintln(env.Stderr, "outpost footage verify:", err)
		return agent.ExitFailure
	}
	w := env.Stdout
	if keyNote != "" {
		fmt.Fprintln(w, "note:", keyNote)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, p := range rep.Problems {
		if p.Chain {
			fmt.Fprintf(w, "ALTERED %s: %s\n", p.Segment, p.What)
		} else {
			fmt.Fprintf(w, "DAMAGED %s at offset %d: %s\n", p.Segment, p.Offset, p.What)
		}
	}
	intact := true
	for _, p := range rep.Problems {
		intact = intact && !p.Chain
	}
	printChain(w, &rep.Chain, pub, intact)
	fmt.Fprintf(w, "%d segments, %d records (%d frames), %s checked: ", rep.Segments, rep.Records, rep.Frames, humanBytes(rep.Bytes))
	if !rep.OK() {
		fmt.Fprintf(w, "%d %s found\n", len(rep.Problems), plural(len(rep.Problems), "problem"))
		return agent.ExitFailure
	}
	if len(s.Recovered()) > 0 {
		fmt.Fprintln(w, "clean (recovered)")
	} else {
		fmt.Fprintln(w, "clean")
	}
	return agent.ExitOK
}

// printChain prints the state of the chain: how far it is intact and who
// signed its heads.
func printChain(w io.Writer, c *footage.ChainReport, pub ed25519.PublicKey, intact bool) {
	if !c.Present {
		fmt.Fprintln(w, "chain: none (no chain journal in the store)")
		return
	}
	switch {
	case c.Links == 0:
		fmt.Fprintf(w, "chain: no sealed segment linked yet (started %s)\n", fmtWhen(c.Started))
	default:
		state := "intact"
		if !intact {
			state = "BROKEN (see above)"
		}
		fmt.Fprintf(w, "chain: %d sealed %s checked, chain %s from %s to %s (entries %d-%d, head %s)",
			c.Links, plural(c.Links, "segment"), state, c.FirstSegment, c.LastSegment, c.First, c.Last, c.Head.Short())
		if c.Deleted > 0 {
			fmt.Fprintf(w, "; %d deleted by retention", c.Deleted)
		}
		fmt.Fprintln(w)
	}
	switch {
	case c.Unsigned:
		fmt.Fprintln(w, "heads: unsigned (the agent has no evidence key configured for the footage store): the chain shows the segments are consistent with each other, not who recorded them")
	case c.Latest == nil && pub == nil:
		fmt.Fprintf(w, "heads: none of the %d signed heads verifies even with the key it names\n", c.Heads)
	case c.Latest == nil:
		fmt.Fprintf(w, "heads: none of the %d signed heads verifies with key %s\n", c.Heads, abbrevKey(identity.FormatPublicKey(pub)))
	case c.KeyGiven:
		fmt.Fprintf(w, "heads: %d signed by key %s, the newest at %s covering entry %d", c.Heads, abbrevKey(identity.FormatPublicKey(pub)), fmtWhen(c.Latest.Time), c.Latest.Count)
		if c.AfterHead > 0 {
			fmt.Fprintf(w, "; %d newer %s not yet signed", c.AfterHead, plural(c.AfterHead, "segment"))
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "heads: %d signed, by %s, NOT checked against the unit's key (give --pubkey)\n", c.Heads, strings.Join(c.Keys, ", "))
	}
}

func abbrevKey(k string) string {
	if len(k) > len(identity.KeyType)+13 {
		return k[:len(identity.KeyType)+13] + "..."
	}
	return k
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
