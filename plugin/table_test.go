package plugin

import (
	"bytes"
	"testing"
)

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	err := printTable(&b, []string{"NAME", "NOT AFTER", "STATUS"}, [][]string{
		{"web", "2027-01-01T00:00:00Z", "Ready"},
		{"a-much-longer-name", "", "Failed: challenge failed: x.example.com: unauthorized: 404"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME                 NOT AFTER              STATUS\n" +
		"web                  2027-01-01T00:00:00Z   Ready\n" +
		"a-much-longer-name                          Failed: challenge failed: x.example.com: unauthorized: 404\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// A row ending in empty cells ends without their padding, and a line
// break inside a cell stays inside it.
func TestPrintTableTrims(t *testing.T) {
	var b bytes.Buffer
	if err := printTable(&b, []string{"NAME", "DETAIL", "NOTE"}, [][]string{
		{"a-long-name", "", ""},
		{"b", "two\nlines", "x"},
	}); err != nil {
		t.Fatal(err)
	}
	want := "NAME          DETAIL      NOTE\n" +
		"a-long-name\n" +
		"b             two lines   x\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
