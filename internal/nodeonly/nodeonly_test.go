package nodeonly

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	err := fmt.Errorf("running checks: %w", &Error{What: "ward doctor", OS: "darwin"})
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("%v is not ErrNotSupported and errors.ErrUnsupported", err)
	}
	if got := err.Error(); !strings.Contains(got, "ward doctor needs Linux") || !strings.Contains(got, "darwin") {
		t.Errorf("message %q does not name the operation and the system", got)
	}
	var e *Error
	if !errors.As(err, &e) || e.What != "ward doctor" {
		t.Errorf("errors.As: %v", e)
	}
}
