// Package directive holds what the Caddyfile directives of caddy-ucwa
// (ucwa, and the emulator's ucwa_pool_emulator) share: the one rule for a
// subdirective given twice, and readers of their arguments.
package directive

import (
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// Block reads the subdirectives of the block d is in (at nesting), calling
// each with the name of every one, d on it. A subdirective given twice is
// an error ("<name>: given twice", after where when it is not empty),
// except the repeatable ones, whose values the caller accumulates.
func Block(d *caddyfile.Dispenser, nesting int, where string, repeatable []string, each func(name string) error) error {
	seen := make(map[string]bool)
	for d.NextBlock(nesting) {
		name := d.Val()
		if seen[name] && !slices.Contains(repeatable, name) {
			if where != "" {
				return d.Errf("%s: %s: given twice", where, name)
			}
			return d.Errf("%s: given twice", name)
		}
		seen[name] = true
		if err := each(name); err != nil {
			return err
		}
	}
	return nil
}

// OneArg reads the one argument of a subdirective into v, refusing an
// empty one (""): JSON reads an empty string as the setting not given,
// so that it would quietly be the default (key_prefix "" the default
// prefix, which merges fleets meant apart; jwks_file "" no key file).
func OneArg(d *caddyfile.Dispenser, v *string) error {
	name := d.Val()
	if !d.Args(v) || d.NextArg() {
		return ArgCount(d, name, "one argument")
	}
	if *v == "" {
		return EmptyArg(d, name)
	}
	return NoBlock(d, name)
}

// EmptyArg is the error of the subdirective name given an empty
// argument ("") where JSON would read it as not given.
func EmptyArg(d *caddyfile.Dispenser, name string) error {
	return d.Errf(`%s: "" is read as not given, its default: leave %s out for the default, or give a value`, name, name)
}

// ArgCount is the error of the subdirective name given other arguments
// than expected says, d on the token where they went wrong: Caddy's
// ArgErr names that token alone ("after 'KiB'" for `max_body_size 64
// KiB`), not the subdirective nor what it takes.
func ArgCount(d *caddyfile.Dispenser, name, expected string) error {
	return d.Errf("%s: wrong argument count: expected %s", name, expected)
}

// NoBlock refuses a block after the arguments of the subdirective name,
// which takes none (d is past its arguments; OneArg and Args check it
// themselves): the block's lines would otherwise be read as
// subdirectives of the block around it, and the error would name its
// "{" (`unrecognized subdirective "{"`), or a line in it, not name.
func NoBlock(d *caddyfile.Dispenser, name string) error {
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s takes no block", name)
	}
	return nil
}

// Word reads the one argument of a subdirective that takes one of words
// (mode enforce|report) into v: the word it is in any letter case, so
// that the adapted JSON shows it as its reader names it, else the
// argument as written, which startup refuses with the same message as
// the same value in JSON.
func Word(d *caddyfile.Dispenser, v *string, words ...string) error {
	if err := OneArg(d, v); err != nil {
		return err
	}
	*v = ucwa.Word(*v, words...)
	return nil
}

// Args reads the one or more arguments of a subdirective.
func Args(d *caddyfile.Dispenser) ([]string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, ArgCount(d, name, "one or more arguments")
	}
	return args, NoBlock(d, name)
}

// Duration reads the one argument of the subdirective d is on into v: a
// duration as caddy.ParseDuration reads it (which also takes days, "1d").
// The error names the subdirective and shows example, a good value.
func Duration(d *caddyfile.Dispenser, v *caddy.Duration, example string) error {
	return duration(d, v, true, example)
}

// NonZeroDuration is Duration for a subdirective whose duration may not
// be 0.
func NonZeroDuration(d *caddyfile.Dispenser, v *caddy.Duration, example string) error {
	return duration(d, v, false, example)
}

func duration(d *caddyfile.Dispenser, v *caddy.Duration, zeroOK bool, example string) error {
	name := d.Val()
	var arg string
	if err := OneArg(d, &arg); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(arg)
	switch {
	case err != nil && zeroOK:
		return d.Errf("%s: %q is not a duration (such as %s)", name, arg, example)
	case err != nil || dur == 0 && !zeroOK:
		return d.Errf("%s: %q is not a duration other than 0 (such as %s)", name, arg, example)
	}
	*v = caddy.Duration(dur)
	return nil
}
