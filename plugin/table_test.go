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
