package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// replyFailures are the kinds RedisFailure gives a reply of Redis, one
// that the server sent: a refusal, whatever it says, is neither a
// timeout nor a failure of the network, of TLS, of the name lookup or of
// the connection.
var replyFailures = []string{"auth", "permission", "reply"}

// userName makes s a name Redis lets an ACL user have (ACL SETUSER
// refuses one with white space or a NUL in it).
func userName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == 0 || strings.ContainsRune(" \t\n\v\f\r", r) {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "ucwa-edge"
	}
	return s
}

// FuzzRedisFailure: RedisFailure classes a reply of Redis, whatever its
// text, as "auth", "permission" or "reply", never as a timeout, a network,
// TLS or connection failure; the same when the reply is wrapped (by
// fmt.Errorf, errors.Join or the store's *Error, which never makes a
// reply a timeout). RedisDenied names something only for a "permission",
// and then either "keys", "a command a script runs" or a command in
// capitals. Of a denial worded as each Redis version words it (6.0 to
// 8, and Valkey; a script's too), with any user's name and command,
// RedisDenied gives the command in capitals, "keys" or "a command a
// script runs" as the denial is, never the user's name; a
// refused password or a missing one is "auth" with nothing denied.
func FuzzRedisFailure(f *testing.F) {
	for _, reply := range []string{
		"NOPERM this user has no permissions to run the 'evalsha' command",
		"NOPERM User bob has no permissions to run the 'config|get' command",
		"NOPERM this user has no permissions to access one of the keys used as arguments",
		"ERR ACL failure in script: User bob has no permissions to run the 'get' command script: 7b6149474e93dc3661a8a719fd6876221f0e5f0c, on @user_script:1.",
		"ERR ACL failure in script: No permissions to access a key script: 7b6149474e93dc3661a8a719fd6876221f0e5f0c, on @user_script:1.",
		"ERR The user executing the script can't run this command or subcommand script: 7b6149474e93dc3661a8a719fd6876221f0e5f0c, on @user_script:1.",
		"ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: 733db9816e9c67c4cc15572d4e80f4ebb13b5cdc, on @user_script:1.",
		"WRONGPASS invalid username-password pair or user is disabled.",
		"NOAUTH Authentication required.",
		"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
		"OOM command not allowed when used memory > 'maxmemory'.",
		"LOADING Redis is loading the dataset in memory",
		"NOPERM permissions to run the '",
		"NOPERM permissions to run the ''",
		"redis: nil",
		"EOF",
		"i/o timeout",
		"",
	} {
		f.Add(reply, "bob", "get")
	}
	f.Add("", "keys", "evalsha")
	f.Add("", "a'b", "x'")
	f.Add("", "", "config|get")
	f.Fuzz(func(t *testing.T, reply, user, command string) {
		check := func(reply, kind, denied string) {
			t.Helper()
			err := error(replyError(reply))
			got, gotDenied := RedisFailure(err), RedisDenied(err)
			if !slices.Contains(replyFailures, got) {
				t.Fatalf("RedisFailure(reply %q) = %q", reply, got)
			}
			if gotDenied != "" && got != "permission" {
				t.Fatalf("reply %q: RedisDenied %q of a %q", reply, gotDenied, got)
			}
			switch gotDenied {
			case "", "keys", "a command a script runs":
			default:
				if gotDenied != strings.ToUpper(gotDenied) || strings.Contains(gotDenied, "'") {
					t.Fatalf("reply %q: RedisDenied %q", reply, gotDenied)
				}
			}
			if kind != "" && (got != kind || gotDenied != denied) {
				t.Fatalf("reply %q: %q denied %q; want %q denied %q", reply, got, gotDenied, kind, denied)
			}
			stored := (*Redis)(nil).fail("reserve", err)
			if errors.Is(stored, ErrTimeout) {
				t.Fatalf("reply %q: a timeout", reply)
			}
			for _, wrapped := range []error{fmt.Errorf("store: evalsha: %w", err), errors.Join(errors.New("check"), err), stored} {
				if again, againDenied := RedisFailure(wrapped), RedisDenied(wrapped); again != got || againDenied != gotDenied {
					t.Fatalf("reply %q: %q denied %q, but %q denied %q wrapped as %v", reply, got, gotDenied, again, againDenied, wrapped)
				}
			}
		}
		check(reply, "", "")

		user = userName(user)
		if command == "" || strings.Contains(command, "'") {
			command = "evalsha"
		}
		const script = " script: 7b6149474e93dc3661a8a719fd6876221f0e5f0c, on @user_script:1."
		upper := strings.ToUpper(command)
		for _, tc := range []struct{ reply, kind, denied string }{
			// Redis 6.0.
			{"NOPERM this user has no permissions to run the '" + command + "' command or its subcommand", "permission", upper},
			// Redis 6.2 and 7.0.
			{"NOPERM this user has no permissions to run the '" + command + "' command", "permission", upper},
			{"NOPERM this user has no permissions to access one of the keys used as arguments", "permission", "keys"},
			{"ERR The user executing the script can't run this command or subcommand" + script, "permission", "a command a script runs"},
			{"ERR The user executing the script can't access at least one of the keys mentioned in the command arguments" + script, "permission", "keys"},
			// Redis 7.2 and later, and Valkey.
			{"NOPERM User " + user + " has no permissions to run the '" + command + "' command", "permission", upper},
			{"NOPERM No permissions to access a key", "permission", "keys"},
			{"ERR ACL failure in script: User " + user + " has no permissions to run the '" + command + "' command" + script, "permission", upper},
			{"ERR ACL failure in script: No permissions to access a key" + script, "permission", "keys"},
			{"WRONGPASS invalid username-password pair or user is disabled.", "auth", ""},
			{"NOAUTH Authentication required.", "auth", ""},
		} {
			check(tc.reply, tc.kind, tc.denied)
		}
	})
}
