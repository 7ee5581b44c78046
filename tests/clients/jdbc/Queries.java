// Runs SQL blocks through PgJDBC as a JDBC tool does (DBeaver: prepared statements, ids bound with setLong) and
// prints each result's column labels and type names and its rows, for the test to compare a run against the
// test Postgres with a run against bemidb. Run: java -cp <jar> Queries.java <jdbc url> <user> <password> <file>
// A block: "== name", then "?L ns:<schema>" / "?L rel:<schema>.<table>" / "?S <text>" parameter lines, then SQL.
import java.nio.file.*;
import java.sql.*;
import java.util.*;

public class Queries {
    static long lookup(Connection conn, String ref) throws SQLException {
        String sql = ref.startsWith("ns:")
                ? "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ?"
                : "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                  + "WHERE n.nspname || '.' || c.relname = ?";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setString(1, ref.substring(ref.indexOf(':') + 1));
            try (ResultSet rs = ps.executeQuery()) { rs.next(); return rs.getLong(1); }
        }
    }

    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(args[3]));
        try (Connection conn = DriverManager.getConnection(args[0], args[1], args[2])) {
            for (int i = 0; i < lines.size(); ) {
                String name = lines.get(i++).substring(3);
                List<String> params = new ArrayList<>();
                while (lines.get(i).startsWith("?")) params.add(lines.get(i++));
                StringBuilder sql = new StringBuilder();
                while (i < lines.size() && !lines.get(i).startsWith("== ")) sql.append(lines.get(i++)).append('\n');
                System.out.println("== " + name);
                try (PreparedStatement ps = conn.prepareStatement(sql.toString())) {
                    for (int p = 0; p < params.size(); p++) {
                        String spec = params.get(p);
                        if (spec.startsWith("?L ")) ps.setLong(p + 1, lookup(conn, spec.substring(3)));
                        else ps.setString(p + 1, spec.substring(3));
                    }
                    try (ResultSet rs = ps.executeQuery()) {
                        ResultSetMetaData md = rs.getMetaData();
                        for (int c = 1; c <= md.getColumnCount(); c++)
                            System.out.println("col\t" + md.getColumnLabel(c) + "\t" + md.getColumnTypeName(c));
                        while (rs.next()) {
                            StringBuilder row = new StringBuilder("row");
                            for (int c = 1; c <= md.getColumnCount(); c++) {
                                String v = rs.getString(c);
                                row.append('\t').append(v == null ? "<null>" : v.replace("\n", "\\n").replace("\t", "\\t"));
                            }
                            System.out.println(row);
                        }
                    }
                } catch (SQLException e) {
                    System.out.println("error\t" + e.getSQLState() + "\t" + e.getMessage().split("\n")[0]);
                }
            }
        }
    }
}
