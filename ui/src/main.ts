import { createApp } from "vue";
import App from "./App.vue";
import { forgetStoredToken } from "./api";
import { router } from "./router";
import "./style.css";

forgetStoredToken();
createApp(App).use(router).mount("#app");
