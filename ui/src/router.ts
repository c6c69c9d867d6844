// History-mode routes: every page has a real URL (deep links, back, reload);
// the master answers any such URL with index.html.
import { createRouter, createWebHistory } from "vue-router";
import SlavesView from "./views/SlavesView.vue";
import RunView from "./views/RunView.vue";
import JobView from "./views/JobView.vue";
import JobsView from "./views/JobsView.vue";
import SecretsView from "./views/SecretsView.vue";
import TriggersView from "./views/TriggersView.vue";

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", name: "slaves", component: SlavesView },
    { path: "/run/:method", name: "run", component: RunView, props: true },
    { path: "/jobs", name: "jobs", component: JobsView },
    { path: "/jobs/:id", name: "job", component: JobView, props: true },
    { path: "/secrets", name: "secrets", component: SecretsView },
    { path: "/triggers", name: "triggers", component: TriggersView },
    { path: "/:rest(.*)*", redirect: "/" },
  ],
});
