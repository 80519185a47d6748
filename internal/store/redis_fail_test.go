package store

import (
	"errors"
	"testing"
)

// replyError is a reply of Redis, as go-redis hands one over.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// TestRedisFailReplies: the replies of a Redis that is full, busy or
// refusing for good are told apart, in every version's wording.
func TestRedisFailReplies(t *testing.T) {
	for _, tc := range []struct {
		reply             string
		full, unavailable bool
	}{
		{"OOM command not allowed when used memory > 'maxmemory'.", true, false},
		// Redis 5 and 6, a script's write refused.
		{"ERR Error running script (call to f_8426c8df41c64d8177dce3ecbbe9146ef3759cd2): @user_script:6: @user_script: 6: -OOM command not allowed when used memory > 'maxmemory'.", true, false},
		{"LOADING Redis is loading the dataset in memory", false, true},
		{"READONLY You can't write against a read only replica.", false, true},
		{"NOAUTH Authentication required.", false, false},
		{"ERR unknown command 'OOM'", false, false},
	} {
		err := (*Redis)(nil).fail("reserve", replyError(tc.reply))
		if full := errors.Is(err, ErrFull); full != tc.full {
			t.Errorf("%q: full %v, want %v", tc.reply, full, tc.full)
		}
		if unavailable := errors.Is(err, ErrUnavailable); unavailable != tc.unavailable {
			t.Errorf("%q: unavailable %v, want %v", tc.reply, unavailable, tc.unavailable)
		}
	}
}
