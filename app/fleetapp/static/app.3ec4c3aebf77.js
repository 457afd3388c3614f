// Fleet Papers front end: a small Vue 3 app that talks only to the JSON API.
// Written with render functions (Vue.h) instead of in-DOM templates, so the strict
// Content-Security-Policy needs no 'unsafe-eval' for Vue's template compiler.
(function () {
  "use strict";

  const { createApp, h, reactive, onMounted } = Vue;

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      const fields = Object.entries(data.fields || {}).map(([k, v]) => `${k} ${v}`);
      const error = new Error([data.error].concat(fields).join(": "));
      error.status = response.status;
      throw error;
    }
    return { data, cache: response.headers.get("X-Cache") };
  }

  const App = {
    setup() {
      const state = reactive({
        user: null,
        email: "",
        password: "",
        error: "",
        keywords: [],
        newKeyword: "",
        q: "",
        page: 1,
        perPage: 10,
        result: { items: [], total: 0 },
        cache: "",
        starred: new Set(),
      });

      function fail(err) {
        state.error = err.message;
      }

      async function loadPapers() {
        try {
          const body = { page: state.page, per_page: state.perPage };
          if (state.q.trim()) body.q = state.q.trim();
          const { data, cache } = await api("POST", "/api/papers/query", body);
          state.result = data;
          state.cache = cache || "";
          state.error = "";
        } catch (err) {
          fail(err);
        }
      }

      async function loadUserData() {
        const [subs, stars] = await Promise.all([
          api("GET", "/api/keywords/subscriptions"),
          api("GET", "/api/stars"),
        ]);
        state.keywords = subs.data.keywords;
        state.starred = new Set(stars.data.items.map((paper) => paper.id));
      }

      async function whoami() {
        try {
          state.user = (await api("GET", "/api/auth/session")).data.user;
          if (state.user) await loadUserData();
        } catch (err) {
          fail(err);
          state.user = null;
        }
      }

      async function authenticate(action) {
        try {
          const { data } = await api("POST", `/api/auth/${action}`, {
            email: state.email,
            password: state.password,
          });
          state.user = data.user;
          state.password = "";
          state.error = "";
          await loadUserData();
        } catch (err) {
          fail(err);
        }
      }

      async function logout() {
        await api("POST", "/api/auth/logout");
        state.user = null;
        state.keywords = [];
        state.starred = new Set();
      }

      async function changeKeyword(action, keyword) {
        try {
          await api("POST", `/api/keywords/${action}`, { keyword });
          state.newKeyword = "";
          state.error = "";
          await loadUserData();
        } catch (err) {
          fail(err);
        }
      }

      async function toggleStar(paper) {
        const action = state.starred.has(paper.id) ? "unstar" : "star";
        try {
          await api("POST", `/api/papers/${paper.id}/${action}`);
          await loadUserData();
        } catch (err) {
          fail(err);
        }
      }

      function go(delta) {
        state.page += delta;
        loadPapers();
      }

      onMounted(() => {
        whoami();
        loadPapers();
      });

      // Every control has a stable id: the browser test (and any other script) finds it by that.
      const input = (id, type, key, placeholder) =>
        h("input", {
          id,
          type,
          placeholder,
          value: state[key],
          onInput: (event) => (state[key] = event.target.value),
        });

      function authPanel() {
        if (state.user) {
          return h("section", { class: "panel row" }, [
            h("span", { id: "signed-in" }, `Signed in as ${state.user.email}`),
            h("button", { id: "logout-button", class: "secondary", onClick: logout }, "Log out"),
          ]);
        }
        return h("section", { class: "panel" }, [
          h("h2", "Sign in"),
          h("div", { class: "row" }, [
            input("auth-email", "email", "email", "e-mail"),
            input("auth-password", "password", "password", "password (8+ characters)"),
            h("button", { id: "login-button", onClick: () => authenticate("login") }, "Log in"),
            h(
              "button",
              { id: "register-button", class: "secondary", onClick: () => authenticate("register") },
              "Register"
            ),
          ]),
        ]);
      }

      function keywordPanel() {
        if (!state.user) return null;
        return h("section", { class: "panel" }, [
          h("h2", "Keywords you follow"),
          h(
            "div",
            { class: "row" },
            state.keywords.map((keyword) =>
              h("span", { class: "chip", key: keyword }, [
                keyword,
                h(
                  "button",
                  { title: "unsubscribe", onClick: () => changeKeyword("unsubscribe", keyword) },
                  "×"
                ),
              ])
            )
          ),
          h("div", { class: "row" }, [
            input("keyword-input", "text", "newKeyword", "add a keyword"),
            h(
              "button",
              { id: "follow-button", onClick: () => changeKeyword("subscribe", state.newKeyword) },
              "Follow"
            ),
          ]),
        ]);
      }

      function paperItem(paper) {
        const starred = state.starred.has(paper.id);
        return h("li", { key: paper.id, "data-paper-id": paper.id }, [
          h("h3", [
            state.user
              ? h(
                  "button",
                  {
                    class: "star",
                    title: starred ? "unstar" : "star",
                    "aria-pressed": starred ? "true" : "false",
                    onClick: () => toggleStar(paper),
                  },
                  starred ? "★" : "☆"
                )
              : null,
            paper.title,
          ]),
          h("div", { class: "muted" }, [paper.published_on, paper.authors.join(", ")].filter(Boolean).join(" · ")),
          h("div", { class: "row" }, paper.keywords.map((k) => h("span", { class: "chip", key: k }, k))),
        ]);
      }

      function papersPanel() {
        const pages = Math.max(1, Math.ceil(state.result.total / state.perPage));
        return h("section", { class: "panel" }, [
          h("h2", "Papers"),
          h("div", { class: "row" }, [
            input("search-input", "text", "q", "search titles and abstracts"),
            h("button", { id: "search-button", onClick: () => { state.page = 1; loadPapers(); } }, "Search"),
            h("span", { id: "papers-total", class: "muted", "data-total": state.result.total },
              `${state.result.total} found · cache ${state.cache}`),
          ]),
          h("ul", { id: "papers", class: "papers" }, state.result.items.map(paperItem)),
          h("div", { class: "row" }, [
            h("button", { class: "secondary", disabled: state.page <= 1, onClick: () => go(-1) }, "Previous"),
            h("span", { class: "muted" }, `page ${state.page} of ${pages}`),
            h("button", { class: "secondary", disabled: state.page >= pages, onClick: () => go(1) }, "Next"),
          ]),
        ]);
      }

      return () =>
        h("div", [
          authPanel(),
          state.error ? h("p", { id: "error", class: "error", role: "alert" }, state.error) : null,
          keywordPanel(),
          papersPanel(),
        ]);
    },
  };

  createApp(App).mount("#app");
})();
