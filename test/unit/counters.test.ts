// m.counter: a column kept current by triggers. The exact SQL of a small model, and the validation
// errors for misuse (test/db/counter.test.ts runs the SmartOffice counter against PostgreSQL).
import { describe, expect, it } from 'vitest';
import { defineModel, t, type E } from '../../generator/dsl/index.ts';
import { compileModel } from '../../generator/emit/index.ts';
import type { ModelNode } from '../../generator/model/nodes.ts';
import { validateModel } from '../../generator/validate/index.ts';

function compiled(model: ModelNode): Map<string, string> {
  const { result, problems } = validateModel(model);
  expect(problems).toEqual([]);
  return new Map(compileModel(result!).flatMap((s) => s.statements.map((st) => [st.id, st.up] as const)));
}

const blog = defineModel('blog', (m) => {
  const users = m.table('users', { id: t.bigint().primaryKey() });
  const posts = m.table('posts', { id: t.bigint().primaryKey(), author_id: t.bigint().notNull().references(users), title: t.text() });
  const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts), body: t.text() });
  m.identity(users);
  const commentCount = m.counter(posts, 'comment_count', { from: comments, key: 'post_id', description: 'Comments on the post.' });
  m.index(posts, { columns: ['author_id'], where: (p) => commentCount.of(p).eq(0), name: 'posts_uncommented_idx' });
  m.policy(posts, 'posts_select', { for: 'select', using: (p) => p.author_id.eq(m.me).or(commentCount.of(p).gt(0)) });
  m.policy(comments, 'comments_select', { for: 'select', using: () => m.me.isNotNull() });
});

describe('m.counter', () => {
  const sql = compiled(blog);

  it('adds `integer NOT NULL DEFAULT 0` to the table, usable in rules and partial indexes', () => {
    expect(sql.get('table blog.posts')).toContain('  "comment_count" integer NOT NULL DEFAULT 0,\n  PRIMARY KEY');
    expect(sql.get('index blog.posts_uncommented_idx')).toBe('CREATE INDEX "posts_uncommented_idx" ON "blog"."posts" ("author_id")\n  WHERE "comment_count" = 0;');
    expect(sql.get('policy blog.posts.posts_select')).toContain('("posts"."comment_count" > 0)');
    // A constant comparison gets no index of its own (the partial index is the one that helps).
    expect([...sql.keys()].filter((id) => id.startsWith('index blog.posts_'))).toEqual(['index blog.posts_author_id_idx', 'index blog.posts_uncommented_idx']);
  });

  it('lets the definer update only the counter column', () => {
    expect(sql.get('grants blog.posts')).toBe(
      [
        'GRANT SELECT ON "blog"."posts" TO "rowguard_definer";',
        'GRANT UPDATE ("comment_count") ON "blog"."posts" TO "rowguard_definer";',
        'GRANT SELECT ON "blog"."posts" TO "app_user";',
        'GRANT SELECT ON "blog"."posts" TO "reporting_user";',
      ].join('\n'),
    );
  });

  it('emits the maintenance function, its row and TRUNCATE triggers with the backfill, and the guard, in that order', () => {
    const ids = [...sql.keys()];
    const counterIds = [
      'function blog.maintain_posts_comment_count',
      'trigger blog.comments.maintain_posts_comment_count',
      'trigger blog.comments.maintain_posts_comment_count_on_truncate',
      'function blog.protect_posts_comment_count',
      'trigger blog.posts.protect_posts_comment_count',
    ];
    expect(ids.filter((id) => counterIds.includes(id))).toEqual(counterIds);
    // After the facts and triggers, before the policies.
    expect(ids.indexOf(counterIds[0]!)).toBeGreaterThan(ids.indexOf('function blog.current_user_id'));
    expect(ids.indexOf(counterIds[4]!)).toBeLessThan(ids.indexOf('policy blog.posts.posts_select'));

    expect(sql.get('function blog.maintain_posts_comment_count')).toBe(
      [
        'CREATE FUNCTION "blog"."maintain_posts_comment_count"() RETURNS trigger',
        '  LANGUAGE plpgsql VOLATILE SECURITY DEFINER',
        '  SET search_path = pg_catalog, pg_temp',
        'AS $rg$',
        'BEGIN',
        '  -- The row lock of each UPDATE serializes concurrent changes to one posts row: none is lost.',
        '  CASE TG_OP',
        "    WHEN 'INSERT' THEN",
        '      UPDATE "blog"."posts" SET "comment_count" = "comment_count" + 1 WHERE "id" = NEW."post_id";',
        "    WHEN 'DELETE' THEN",
        '      UPDATE "blog"."posts" SET "comment_count" = "comment_count" - 1 WHERE "id" = OLD."post_id";',
        "    WHEN 'UPDATE' THEN",
        '      IF NEW."post_id" IS DISTINCT FROM OLD."post_id" THEN',
        '        UPDATE "blog"."posts" SET "comment_count" = "comment_count" - 1 WHERE "id" = OLD."post_id";',
        '        UPDATE "blog"."posts" SET "comment_count" = "comment_count" + 1 WHERE "id" = NEW."post_id";',
        '      END IF;',
        "    WHEN 'TRUNCATE' THEN",
        '      UPDATE "blog"."posts" SET "comment_count" = 0 WHERE "comment_count" <> 0;',
        '  END CASE;',
        '  RETURN NULL;',
        'END',
        '$rg$;',
        'ALTER FUNCTION "blog"."maintain_posts_comment_count"() OWNER TO "rowguard_definer";',
        'REVOKE ALL ON FUNCTION "blog"."maintain_posts_comment_count"() FROM PUBLIC;',
        `COMMENT ON FUNCTION "blog"."maintain_posts_comment_count"() IS 'posts.counters "comment_count": keeps blog.posts.comment_count equal to the number of blog.comments rows whose post_id is the row''s id. Comments on the post.';`,
      ].join('\n'),
    );

    expect(sql.get('trigger blog.comments.maintain_posts_comment_count')).toBe(
      [
        'CREATE TRIGGER "maintain_posts_comment_count" AFTER INSERT OR DELETE OR UPDATE OF "post_id" ON "blog"."comments"',
        '  FOR EACH ROW EXECUTE FUNCTION "blog"."maintain_posts_comment_count"();',
        '-- Count the rows that are there already, as rowguard_definer: row-level security is forced on',
        '-- both tables, so the migration role itself would count only what policies show it. CREATE',
        '-- TRIGGER keeps writers of comments waiting until this migration commits, so no row is missed',
        '-- between this count and the trigger.',
        'DO $rg$',
        'DECLARE',
        "  previous_role text := current_setting('role');",
        'BEGIN',
        '  SET LOCAL ROLE "rowguard_definer";',
        '  UPDATE "blog"."posts" AS p',
        '    SET "comment_count" = (SELECT count(*) FROM "blog"."comments" AS c WHERE c."post_id" = p."id")',
        '    WHERE p."comment_count" IS DISTINCT FROM (SELECT count(*) FROM "blog"."comments" AS c WHERE c."post_id" = p."id");',
        "  PERFORM set_config('role', previous_role, true);",
        'END',
        '$rg$;',
      ].join('\n'),
    );
    expect(sql.get('trigger blog.comments.maintain_posts_comment_count_on_truncate')).toBe(
      [
        'CREATE TRIGGER "maintain_posts_comment_count_on_truncate" AFTER TRUNCATE ON "blog"."comments"',
        '  FOR EACH STATEMENT EXECUTE FUNCTION "blog"."maintain_posts_comment_count"();',
      ].join('\n'),
    );

    expect(sql.get('function blog.protect_posts_comment_count')).toBe(
      [
        'CREATE FUNCTION "blog"."protect_posts_comment_count"() RETURNS trigger',
        '  LANGUAGE plpgsql VOLATILE',
        '  SET search_path = pg_catalog, pg_temp',
        'AS $rg$',
        'BEGIN',
        "  IF TG_OP = 'INSERT' THEN",
        '    -- No comments row can name a row that does not exist yet (the foreign key is checked at once).',
        '    NEW."comment_count" := 0;',
        `  ELSIF NEW."comment_count" IS DISTINCT FROM OLD."comment_count" AND current_user <> 'rowguard_definer' THEN`,
        "    RAISE EXCEPTION 'column comment_count of blog.posts is maintained by rowguard and cannot be set'",
        "      USING ERRCODE = 'insufficient_privilege',",
        "            DETAIL = 'It counts the blog.comments rows whose post_id is the row''s id; triggers on blog.comments keep it current.',",
        "            HINT = 'Leave comment_count out of the statement; insert or delete blog.comments rows instead.';",
        '  END IF;',
        '  RETURN NEW;',
        'END',
        '$rg$;',
        'REVOKE ALL ON FUNCTION "blog"."protect_posts_comment_count"() FROM PUBLIC;',
        `COMMENT ON FUNCTION "blog"."protect_posts_comment_count"() IS 'posts.counters "comment_count": blog.posts.comment_count is maintained by rowguard; refuses any other change and starts new rows at 0.';`,
      ].join('\n'),
    );
    expect(sql.get('trigger blog.posts.protect_posts_comment_count')).toBe(
      [
        'CREATE TRIGGER "protect_posts_comment_count" BEFORE INSERT OR UPDATE ON "blog"."posts"',
        '  FOR EACH ROW EXECUTE FUNCTION "blog"."protect_posts_comment_count"();',
      ].join('\n'),
    );
  });

  it('gives every statement its own down', () => {
    const { result } = validateModel(blog);
    const downs = new Map(compileModel(result!).flatMap((s) => s.statements.map((st) => [st.id, st.down] as const)));
    expect(downs.get('function blog.maintain_posts_comment_count')).toBe('DROP FUNCTION "blog"."maintain_posts_comment_count"();');
    expect(downs.get('trigger blog.comments.maintain_posts_comment_count')).toBe('DROP TRIGGER "maintain_posts_comment_count" ON "blog"."comments";');
    expect(downs.get('trigger blog.comments.maintain_posts_comment_count_on_truncate')).toBe('DROP TRIGGER "maintain_posts_comment_count_on_truncate" ON "blog"."comments";');
    expect(downs.get('function blog.protect_posts_comment_count')).toBe('DROP FUNCTION "blog"."protect_posts_comment_count"();');
    expect(downs.get('trigger blog.posts.protect_posts_comment_count')).toBe('DROP TRIGGER "protect_posts_comment_count" ON "blog"."posts";');
  });
});

describe('m.counter validation', () => {
  const problemsOf = (build: Parameters<typeof defineModel>[1]) => validateModel({ ...defineModel('blog', build), file: 'policies/blog.ts' }).problems;
  const summary = (build: Parameters<typeof defineModel>[1]) => problemsOf(build).map((p) => [p.code, p.path, p.message]);

  it('refuses a key that does not reference the table, references another column, or does not exist', () => {
    const problems = problemsOf((m) => {
      const posts = m.table('posts', { id: t.bigint().primaryKey(), slug: t.text().unique() });
      const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint(), post_slug: t.text().references(posts, { column: 'slug' }) });
      m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
      m.counter(posts, 'slug_count', { from: comments, key: 'post_slug' });
      m.counter(posts, 'nope_count', { from: comments, key: 'nope' as 'post_id' });
    });
    expect(problems.map((p) => [p.code, p.path, p.message])).toEqual([
      ['counter-key-not-foreign-key', 'posts.counters "comment_count"', 'counter posts.comment_count: "comments.post_id" does not reference "posts"'],
      ['counter-key-not-primary-key', 'posts.counters "slug_count"', 'counter posts.slug_count: "comments.post_slug" references "posts.slug", not its primary key "id"'],
      ['unknown-column', 'posts.counters "nope_count"', 'counter posts.nope_count: table "comments" has no column "nope"'],
    ]);
    expect(problems.every((p) => p.file === 'policies/blog.ts')).toBe(true);
    expect(problems[0]!.fix).toBe("declare it with .references(posts) in m.table('comments', …), or give the counter the column that does");
    expect(problems[2]!.fix).toContain('one of id, post_id, post_slug');
  });

  it('refuses a column the table already has, a composite key, its own table and unknown tables', () => {
    expect(
      summary((m) => {
        const posts = m.table('posts', { id: t.bigint().primaryKey(), title: t.text() });
        const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts) });
        m.counter(posts, 'title', { from: comments, key: 'post_id' });
        m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
        m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
        m.counter(comments, 'reply_count', { from: comments, key: 'post_id' });
        m.counter(posts, 'like_count', { from: { name: 'likes', columns: { post_id: t.bigint() } }, key: 'post_id' });
      }),
    ).toEqual([
      ['duplicate-column', 'posts.counters "title"', 'table "posts" already has a column "title"; the counter would add it a second time'],
      ['duplicate-column', 'posts.counters "comment_count"', 'table "posts" already has a column "comment_count"; the counter would add it a second time'],
      ['unknown-table', 'posts.counters "like_count"', 'counter "like_count" names table "likes", which this model does not declare'],
      ['duplicate-name', 'posts.counters "comment_count"', '"maintain_posts_comment_count" is already the name of a generated function'],
      ['duplicate-name', 'posts.counters "comment_count"', '"protect_posts_comment_count" is already the name of a generated function'],
      ['counter-on-itself', 'comments.counters "reply_count"', 'counter comments.reply_count counts rows of its own table'],
    ]);
    expect(
      summary((m) => {
        const tags = m.table('tags', { a: t.bigint(), b: t.bigint() }, { primaryKey: ['a', 'b'] });
        const uses = m.table('uses', { id: t.bigint().primaryKey(), a: t.bigint().references(tags, { column: 'a' }) });
        m.counter(tags, 'use_count', { from: uses, key: 'a' });
      }),
    ).toEqual([['counter-composite-key', 'tags.counters "use_count"', 'counter tags.use_count: "tags" has a composite primary key (a, b); a counter needs a single-column key to find the row it counts for']]);
  });

  it('refuses generated names over 63 bytes and names taken by facts', () => {
    const long = `n${'x'.repeat(55)}`;
    const found = summary((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const posts = m.table('posts', { id: t.bigint().primaryKey() });
      const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts) });
      m.identity(users);
      m.fact('maintain_posts_comment_count', m.me);
      m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
      m.counter(posts, long, { from: comments, key: 'post_id' });
    });
    expect(found.map(([code]) => code)).toEqual(['duplicate-name', 'name-too-long', 'name-too-long', 'name-too-long']);
    expect(found[0]![2]).toBe('"maintain_posts_comment_count" is already the name of a generated function');
  });

  it('refuses write rules, column guards and seeds that would write the counter', () => {
    const found = summary((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const posts = m.table('posts', { id: t.bigint().primaryKey(), title: t.text() });
      const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts) });
      m.identity(users);
      const count = m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
      m.onWrite(posts, 'posts_reset', { events: ['update'], set: () => ({ comment_count: 0 }) as Record<string, number> });
      m.onWrite(comments, 'comments_touch', { events: ['insert'], alsoUpdate: { table: posts, set: () => ({ comment_count: 1 }) as Record<string, number>, where: (p, _o, c) => p.id.eq(c.post_id) } });
      m.guardColumns(posts, 'posts_fixed', { columns: ['title', count.column as 'title'], when: () => m.me.isNotNull(), message: 'no' });
      m.seed(posts, [{ id: 1, comment_count: 3 } as Record<string, number>]);
    });
    expect(found).toEqual([
      ['counter-written', 'posts.onWrite "posts_reset"', 'write rule "posts_reset" sets posts.comment_count, which only the triggers of counter posts.comment_count may change'],
      ['counter-written', 'comments.onWrite "comments_touch"', 'write rule "comments_touch" updates posts.comment_count, which only the triggers of counter posts.comment_count may change'],
      ['counter-written', 'posts.guards "posts_fixed"', 'column guard "posts_fixed" guards posts.comment_count, which only the triggers of counter posts.comment_count may change'],
      ['counter-written', 'seeds.posts', 'a seed row gives a value for posts.comment_count, which only the triggers of counter posts.comment_count may change'],
    ]);
  });

  it('reads the counter of a row of another table as an unknown column', () => {
    const found = summary((m) => {
      const users = m.table('users', { id: t.bigint().primaryKey() });
      const posts = m.table('posts', { id: t.bigint().primaryKey() });
      const comments = m.table('comments', { id: t.bigint().primaryKey(), post_id: t.bigint().references(posts) });
      m.identity(users);
      const count = m.counter(posts, 'comment_count', { from: comments, key: 'post_id' });
      m.policy(comments, 'comments_select', { for: 'select', using: (c) => count.of(c as never as Parameters<typeof count.of>[0]).eq(0) as E });
    });
    expect(found).toEqual([['unknown-column', 'comments.select[0] "comments_select"', 'table "comments" has no column "comment_count"']]);
  });
});
