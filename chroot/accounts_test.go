package chroot

import "testing"

func TestParseDB(t *testing.T) {
	users := parseDB([]byte("root:x:0:0:root:/root:/bin/bash\n#comment\nbad\nkrg:x:1000:1000:,,,:/home/krg:/bin/bash\n"), false)
	if len(users) != 2 || users[1].Name != "krg" || users[1].ID != 1000 || users[1].Home != "/home/krg" {
		t.Errorf("users = %+v", users)
	}
	groups := parseDB([]byte("sudo:x:27:a,b\nkrg:x:1000:\n"), true)
	if len(groups) != 2 || len(groups[0].Members) != 2 || len(groups[1].Members) != 0 {
		t.Errorf("groups = %+v", groups)
	}
	if a, ok := users.Find("krg"); !ok || a.ID != 1000 {
		t.Errorf("Find(krg) = %+v, %v", a, ok)
	}
	if a, ok := groups.FindID(27); !ok || a.Name != "sudo" {
		t.Errorf("FindID(27) = %+v, %v", a, ok)
	}
	if _, ok := users.Find("nobody"); ok {
		t.Error("Find found an absent user")
	}
}
