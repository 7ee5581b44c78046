// pgx v4 against one server: parameters described by the server and sent in binary (uuid, arrays, dates),
// rows read back typed. Prints one JSON document; tests/clients/test_strict_drivers.py compares the output for
// the test Postgres and for bemidb. Built offline in GOPATH mode from Debian's golang-github-jackc-pgx-v4-dev.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v4"
)

func main() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close(ctx)
	out := map[string]interface{}{}
	run := func(label, sql string, args ...interface{}) {
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			out[label] = "error: " + err.Error()
			return
		}
		var got [][]interface{}
		for rows.Next() {
			values, err := rows.Values()
			if err != nil {
				out[label] = "error: " + err.Error()
				rows.Close()
				return
			}
			got = append(got, values)
		}
		if err := rows.Err(); err != nil {
			out[label] = "error: " + err.Error()
			return
		}
		out[label] = got
	}
	uid := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	run("any text[]", "SELECT id FROM people WHERE name = ANY($1) ORDER BY id", []string{"ann", "cy"})
	run("any int8[]", "SELECT name FROM people WHERE id = ANY($1) ORDER BY id", []int64{1, 2})
	run("uuid", "SELECT id, name FROM people WHERE uid = $1", uid)
	run("date", "SELECT id FROM people WHERE born < $1 ORDER BY id", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))
	run("timestamptz", "SELECT id FROM people WHERE seen >= $1 ORDER BY id", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	run("in", "SELECT id FROM people WHERE id IN ($1, $2) ORDER BY id", int64(1), int64(3))
	run("like", "SELECT id FROM people WHERE name LIKE $1 ORDER BY id", "%n%")
	run("typed row", "SELECT id, name, born, price::text, flag FROM people WHERE id = $1", int64(1))
	doc, _ := json.Marshal(out)
	fmt.Println(string(doc))
}
